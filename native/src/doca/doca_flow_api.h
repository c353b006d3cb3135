/* SPDX-License-Identifier: BSD-2-Clause */
/* DOCA Flow's declarations: the SDK's own header when built with it, else the project's (doca_flow_decl.h). */
#ifndef PYFLOW_DOCA_FLOW_API_H
#define PYFLOW_DOCA_FLOW_API_H

#ifdef PF_HAVE_DOCA_SDK
#include <doca_error.h>
#include <doca_flow.h>
#else
#include "doca_flow_decl.h"
#endif

#endif
