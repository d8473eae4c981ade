// Fault injection for the CLI tests, loaded into a CLI child process with `node --import`. It makes
// chosen training steps raise an error from inside tfjs, as a failing kernel would.
//
// The training loop computes one tf.variableGrads per step, and tfjs runs each through the engine's
// `gradients` method with the model's variables. This wrapper counts those calls over the whole
// process and raises on the ones MOEBENCH_TEST_FAIL_STEPS lists: call numbers from 1, separated by
// commas, or `all`. The count does not restart per model, so call 19 is step 19 of the first model.
import { tf } from '@moebench/backend';

const setting = process.env.MOEBENCH_TEST_FAIL_STEPS ?? '';
const failAll = setting === 'all';
const failing = new Set(
  setting
    .split(',')
    .filter((entry) => entry !== '' && entry !== 'all')
    .map(Number),
);
if (!failAll && [...failing].some((call) => !Number.isInteger(call) || call < 1)) {
  throw new Error(`MOEBENCH_TEST_FAIL_STEPS is "${setting}"; allowed: "all" or call numbers >= 1 separated by commas.`);
}

const engine = tf.engine();
const gradients = engine.gradients.bind(engine);
let calls = 0;
engine.gradients = (f, xs, dy, allowNoGradients) => {
  if (xs.every((x) => x instanceof tf.Variable)) {
    calls += 1;
    if (failAll || failing.has(calls)) throw new Error(`injected kernel failure in training step call ${calls}`);
  }
  return gradients(f, xs, dy, allowNoGradients);
};
