/* weight_rule.h - the tests reach the deterministic weight rule through here; it lives in the
 * library (io/weight_rule.h) since `mobileclip bench` builds its models with it too. */
#include "io/weight_rule.h"
