/* kernels_common.h - what every kernels_<isa>.c file includes before its templates. */
#ifndef MC_NN_KERNELS_COMMON_H
#define MC_NN_KERNELS_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "nn/isa.h"
#include "nn/kernel_attr.h"
#include "nn/kernels.h"

#endif
