// SPDX-License-Identifier: BSD-2-Clause
/*
 * The pin tree of the ebpf backend: <pin_root>/<instance>/ on a bpffs.
 * A host on which pyflow never ran has no pin root, and may not even have
 * bpffs mounted: both are created here, root-only, before libbpf pins into
 * them (libbpf's auto-pin creates one directory level only).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <linux/magic.h>
#include "ebpf/ebpf.h"

#define BPFFS_MOUNT "/sys/fs/bpf"

static int is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && (unsigned long)st.f_type == (unsigned long)BPF_FS_MAGIC;
}

/* The usual place has no bpffs: mount one there, as xdp-loader and bpftool do. */
static int bpffs_mount_if_absent(const char *pin_root, struct pf_error *err)
{
	size_t n = strlen(BPFFS_MOUNT);

	if (strncmp(pin_root, BPFFS_MOUNT, n) || (pin_root[n] && pin_root[n] != '/'))
		return 0;
	if (is_bpffs(BPFFS_MOUNT))
		return 0;
	if (mount("bpf", BPFFS_MOUNT, "bpf", 0, "mode=0700"))
		return pf_err(err, -errno, "pin root %s: no bpffs at " BPFFS_MOUNT " and mounting one failed: %s "
			      "(mount -t bpf bpf " BPFFS_MOUNT ")", pin_root, strerror(errno));
	pf_info("mounted bpffs at " BPFFS_MOUNT " (it was not mounted)");
	return 0;
}

/* mkdir -p with 0700; a component that exists must be a directory. */
static int mkdir_parents(const char *dir, const char *what, struct pf_error *err)
{
	char path[PATH_MAX];
	struct stat st;
	size_t len = strlen(dir);

	if (len >= sizeof(path))
		return pf_err(err, -ENAMETOOLONG, "%s %s: path too long", what, dir);
	memcpy(path, dir, len + 1);
	for (char *p = path + 1;; p++) {
		char saved = *p;

		if (saved != '/' && saved != 0)
			continue;
		*p = 0;
		if (stat(path, &st) == 0) {
			if (!S_ISDIR(st.st_mode))
				return pf_err(err, -ENOTDIR, "%s %s: %s is in the way and is not a directory", what, dir,
					      path);
		} else if (errno != ENOENT) {
			return pf_err(err, -errno, "%s %s: cannot look at %s: %s", what, dir, path, strerror(errno));
		} else if (mkdir(path, 0700) && errno != EEXIST) {
			return pf_err(err, -errno, "%s %s: cannot create %s: %s", what, dir, path, strerror(errno));
		}
		*p = saved;
		if (!saved)
			return 0;
	}
}

int pf_ebpf_pins_prepare(const char *pin_root, const char *pin_dir, int *created, struct pf_error *err)
{
	struct statvfs vfs;
	struct stat st;
	int ret;

	*created = 0;
	if (pin_root[0] != '/')
		return pf_err(err, -EINVAL, "pin root %s: expected an absolute path on a bpffs", pin_root);
	ret = bpffs_mount_if_absent(pin_root, err);
	if (!ret)
		ret = mkdir_parents(pin_root, "pin root", err);
	if (ret)
		return ret;
	if (!is_bpffs(pin_root))
		return pf_err(err, -EXDEV, "pin root %s: not on a bpffs mount (mount -t bpf bpf %s, or pick a "
			      "directory under " BPFFS_MOUNT ")", pin_root, pin_root);
	if (statvfs(pin_root, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
		return pf_err(err, -EROFS, "pin root %s: the bpffs is mounted read-only", pin_root);
	if (mkdir(pin_dir, 0700) == 0) {
		*created = 1;
		return 0;
	}
	if (errno != EEXIST)
		return pf_err(err, -errno, "pin directory %s: cannot create it: %s", pin_dir, strerror(errno));
	if (stat(pin_dir, &st) == 0 && !S_ISDIR(st.st_mode))
		return pf_err(err, -ENOTDIR, "pin directory %s: a file is in the way", pin_dir);
	if (access(pin_dir, W_OK | X_OK))
		return pf_err(err, -errno, "pin directory %s: %s", pin_dir, strerror(errno));
	return 0;
}

void pf_ebpf_pins_remove(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path))
			pf_warn("cannot remove pin %s: %s", path, strerror(errno));
	}
	closedir(d);
	if (rmdir(dir) && errno != ENOENT)
		pf_warn("cannot remove %s: %s", dir, strerror(errno));
}
