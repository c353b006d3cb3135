/* placeholder: packet semantics shared by XDP and the software pipes */
#ifndef PYFLOW_PACKET_H
#define PYFLOW_PACKET_H
#include "pyflow/shared.h"
#endif
