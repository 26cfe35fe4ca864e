/* augment_internal.h - pieces shared by the augment/ files (not for other modules). */
#ifndef MC_AUGMENT_INTERNAL_H
#define MC_AUGMENT_INTERNAL_H

#include "augment/augment.h"

#define MC_AUGMENT_MAX_OUT 16384 /* output side limit */
/* A crop box reaching outside the image may cover at most max(image area, this) pixels. */
#define MC_AUGMENT_MAX_PAD_PIXELS (1 << 24)

/* One stored RandAugment pair is something the reference could reapply. */
int mc_augment_ra_op_check(const mc_augment_ra_op *o, mc_err *e);
/* The inverse affine matrix PIL receives for a geometric op on a w x h image (identity for
 * the others). */
void mc_augment_op_matrix(int op, double magnitude, int w, int h, double m[6]);
/* _apply_op: dst = op(src), both w x h, distinct. */
int mc_augment_op_apply(int op, double magnitude, const mc_image *src, mc_image *dst, mc_err *e);

#endif
