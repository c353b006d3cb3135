/* SPDX-License-Identifier: BSD-2-Clause */
/* A growing text buffer for the JSON that pf_instance_describe returns. Private to the C core. */
#ifndef PYFLOW_JSONBUF_H
#define PYFLOW_JSONBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

struct pf_jbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static inline void pf_jb_vput(struct pf_jbuf *b, const char *fmt, va_list ap)
{
	va_list copy;
	int n;

	if (b->oom)
		return;
	va_copy(copy, ap);
	n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, copy);
	va_end(copy);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (!b->s || b->len + (size_t)n + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap : 4096);
		char *s;

		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
		vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	}
	b->len += (size_t)n;
}

static inline void pf_jb_put(struct pf_jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void pf_jb_put(struct pf_jbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pf_jb_vput(b, fmt, ap);
	va_end(ap);
}

/* s as a JSON string (quotes, backslashes and control characters escaped); NULL is null */
static inline void pf_jb_str(struct pf_jbuf *b, const char *s)
{
	if (!s) {
		pf_jb_put(b, "null");
		return;
	}
	pf_jb_put(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			pf_jb_put(b, "\\%c", c);
		else if (c < 0x20)
			pf_jb_put(b, "\\u%04x", c);
		else
			pf_jb_put(b, "%c", c);
	}
	pf_jb_put(b, "\"");
}

/* bytes as lower-case hex, in a JSON string */
static inline void pf_jb_hex(struct pf_jbuf *b, const void *p, size_t n)
{
	const uint8_t *c = p;

	pf_jb_put(b, "\"");
	for (size_t i = 0; i < n; i++)
		pf_jb_put(b, "%02x", c[i]);
	pf_jb_put(b, "\"");
}

/* The pf_instance_describe contract: copy out (or -ENOSPC with *needed), free the buffer. */
static inline int pf_jb_finish(struct pf_jbuf *b, char *buf, uint32_t len, uint32_t *needed, struct pf_error *err)
{
	int ret = 0;

	if (b->oom || !b->s) {
		free(b->s);
		return pf_err(err, -ENOMEM, "describe: out of memory");
	}
	if (needed)
		*needed = (uint32_t)b->len + 1;
	if (buf && len > b->len)
		memcpy(buf, b->s, b->len + 1);
	else
		ret = pf_err(err, -ENOSPC, "describe: %zu bytes needed", b->len + 1);
	free(b->s);
	b->s = NULL;
	return ret;
}

#endif
