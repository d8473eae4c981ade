import { type Rng, tf } from '@moebench/backend';

/** A trainable variable with the stable name it is saved under. */
export interface NamedVariable {
  /** Path-like name, unique inside one model, for example `block0.attention.wqkv`. */
  name: string;
  variable: tf.Variable;
}

/**
 * Creates a model's variables from one seeded generator and keeps them in creation order. Each
 * variable draws from its own stream (`rng.fork(name)`), so adding a variable does not change the
 * initial values of the others. Variables are created without a tfjs name, since tfjs names are
 * global and two models of the same architecture would collide.
 */
export class ParameterStore {
  /** Every variable, in creation order (the order of `trainableVariables` and of the saved file). */
  readonly entries: NamedVariable[] = [];
  private readonly names = new Set<string>();
  private readonly owned: tf.Variable[] = [];

  constructor(private readonly rng: Rng) {}

  /** Creates a variable of normal draws truncated at 2 standard deviations. */
  normal(name: string, shape: number[], std: number): tf.Variable {
    const initial = this.rng.fork(name).truncatedNormal(shape, std);
    return this.add(name, initial);
  }

  /** Creates a variable filled with `value`. */
  constant(name: string, shape: number[], value: number): tf.Variable {
    return this.add(name, tf.fill(shape, value, 'float32'));
  }

  /** Registers variables a layer package created, named `${prefix}.${index}`. */
  adopt(prefix: string, variables: readonly tf.Variable[]): void {
    variables.forEach((variable, index) => this.register(`${prefix}.${index}`, variable));
  }

  /** The variables alone, in order. */
  get variables(): tf.Variable[] {
    return this.entries.map((entry) => entry.variable);
  }

  /** A forked generator for a layer package that draws its own initial values. */
  fork(label: string): Rng {
    return this.rng.fork(label);
  }

  /** Releases the variables this store created; adopted ones belong to their layer, which releases them. */
  disposeOwned(): void {
    for (const variable of this.owned) variable.dispose();
    this.owned.length = 0;
  }

  private add(name: string, initial: tf.Tensor): tf.Variable {
    const variable = tf.variable(initial, true);
    initial.dispose();
    this.owned.push(variable);
    this.register(name, variable);
    return variable;
  }

  private register(name: string, variable: tf.Variable): void {
    if (this.names.has(name)) throw new Error(`Duplicate variable name "${name}" in one model.`);
    this.names.add(name);
    this.entries.push({ name, variable });
  }
}
