#!/usr/bin/env python3
"""PyTorch peer of moebench's benchmark cases, for the ratio table of `pnpm bench --peer`.

Contract of the model modules (dense_models.py: transformer, gmlp, smlp; moe_models.py: switch,
gshard, base, hash). Each module sits next to this file and exports

    BUILDERS = {"<architecture>": build}
    build(torch, config: dict, seed: int) -> torch.nn.Module

`config` is moebench's compute-matched ModelConfig as JSON: the `config` of
`matchCompute(...)[architecture]` from @moebench/models, exactly as the bench case builds the
model, with moebench's defaults for the fields it leaves out. The module's `forward(inputs)` takes
int64 token ids [batch, seqLen], runs in training mode (the runner never calls eval()), and returns

    (logits [batch, seqLen, vocab], aux_loss (0-dim tensor), loss_mask ([batch, seqLen] float) or None)

The model must hold the same parameters as moebench's (the runner compares the counts and fails
the architecture when they differ). Nothing else is needed: the runner does the data, the loss,
the backward pass, the clipping, the optimiser and the timing. A module that does not import, or
has no builder for an architecture, turns that architecture into a skipped row with the reason.

Cases:

- dense-ffn: a two-layer FFN y = GELU(x W1) W2 at 2048 tokens, d=256, f=1024, forward plus the
  gradients of W1 and W2 for a fixed upstream gradient (loss = sum(y * dy));
- switch-layer: one Switch top-1 MoE layer (8 experts of d=256, f=1024, capacity factor 1.0,
  multiplicative router jitter 0.01, load-balancing loss 0.01) at 2048 tokens, forward plus the
  gradients of every parameter;
- train-step-<architecture>, one per entry of --models: one training step as moebench's trainer
  runs it (packages/train/src/loop.ts): forward, masked mean cross-entropy plus the auxiliary loss,
  backward, clipping to the global gradient norm, and an AdamW update (decay on parameters of
  rank >= 2 only), skipped when the loss or the norm is not finite. FLOPs are moebench's
  accounting: 3 x forward FLOPs per token x tokens.

Prints one JSON document on stdout. When PyTorch is missing it prints {"skipped": "<reason>"} and
exits 0, so the caller can show the reason in one line.

Usage: peer.py [--threads N] [--seconds S] [--min-steps N] [--cases a,b] [--models JSON]
               [--training JSON] [--self-check]
"""

import argparse
import importlib
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

LAYER_CASES = ("dense-ffn", "switch-layer")
MODEL_MODULES = ("dense_models", "moe_models")

# Sizes shared with benchmarks/src/cases/dense-ffn.ts and moe-layers.ts.
TOKENS = 2048
D_MODEL = 256
D_FF = 1024
EXPERTS = 8

# The quick suite's optimiser settings (suites/quick.yaml); --training overrides them.
DEFAULT_TRAINING = {
    "learningRate": 0.003,
    "beta1": 0.9,
    "beta2": 0.95,
    "epsilon": 1e-8,
    "weightDecay": 0.1,
    "gradientClipNorm": 1.0,
}
MODEL_SPEC_KEYS = {"architecture", "config", "batch", "parameters", "forwardFlopsPerToken"}


def parse_args(argv):
    parser = argparse.ArgumentParser(description="PyTorch peer timings for moebench's bench cases.")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads; default: MOEBENCH_NATIVE_THREADS (the native kernels' threads), else the machine's cores")
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per case after warm-up (default 3)")
    parser.add_argument("--min-steps", type=int, default=5, help="minimum measured steps per case (default 5)")
    parser.add_argument("--cases", default=None,
                        help="comma-separated case names; default: dense-ffn, switch-layer and train-step-<architecture> for each of --models")
    parser.add_argument("--models", default="[]",
                        help="JSON list of training steps: {architecture, config (moebench's ModelConfig), batch, "
                             "parameters (moebench's trainable parameter count), forwardFlopsPerToken}")
    parser.add_argument("--training", default=None,
                        help="JSON optimiser settings: learningRate, beta1, beta2, epsilon, weightDecay, gradientClipNorm "
                             "(missing keys take the quick suite's values)")
    parser.add_argument("--self-check", action="store_true",
                        help="check the balanced assignment against brute force and the models' causality, then exit")
    args = parser.parse_args(argv)

    try:
        models = json.loads(args.models)
    except json.JSONDecodeError as error:
        parser.error(f"--models must be JSON, received {args.models[:80]!r} ({error})")
    if not isinstance(models, list):
        parser.error(f"--models must be a JSON list, received {type(models).__name__}")
    for index, spec in enumerate(models):
        if not isinstance(spec, dict) or set(spec) != MODEL_SPEC_KEYS:
            keys = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
            parser.error(f"--models[{index}] must have exactly the keys {sorted(MODEL_SPEC_KEYS)}, received {keys}")
    args.models = models

    known = list(LAYER_CASES) + [f"train-step-{spec['architecture']}" for spec in models]
    if args.cases is None:
        args.cases = known
    else:
        cases = [name.strip() for name in args.cases.split(",") if name.strip()]
        for name in cases:
            if name not in known:
                parser.error(f"--cases: unknown case \"{name}\"; allowed: {', '.join(known)}")
        args.cases = cases

    training = dict(DEFAULT_TRAINING)
    if args.training is not None:
        try:
            given = json.loads(args.training)
        except json.JSONDecodeError as error:
            parser.error(f"--training must be a JSON object, received {args.training[:80]!r} ({error})")
        if not isinstance(given, dict):
            parser.error(f"--training must be a JSON object, received {type(given).__name__}")
        unknown = sorted(set(given) - set(DEFAULT_TRAINING))
        if unknown:
            parser.error(f"--training: unknown keys {unknown}; allowed: {sorted(DEFAULT_TRAINING)}")
        for key, value in given.items():
            # bool is an int in Python; a setting must be a real number.
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                parser.error(f"--training: {key} must be a finite number, received {value!r}")
        training.update(given)
    for key in ("learningRate", "epsilon", "gradientClipNorm"):
        if not training[key] > 0:
            parser.error(f"--training: {key} must be > 0, received {training[key]!r}")
    for key in ("beta1", "beta2"):
        if not 0 <= training[key] < 1:
            parser.error(f"--training: {key} must be >= 0 and < 1, received {training[key]!r}")
    if training["weightDecay"] < 0:
        parser.error(f"--training: weightDecay must be >= 0, received {training['weightDecay']!r}")
    args.training = training

    if args.threads is None:
        text = os.environ.get("MOEBENCH_NATIVE_THREADS", "")
        if text != "":
            if not text.isdigit() or int(text) < 1:
                parser.error(f"MOEBENCH_NATIVE_THREADS must be a positive integer, received \"{text}\"")
            args.threads = int(text)
        else:
            args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if args.threads < 1:
        parser.error(f"--threads must be a positive integer, received {args.threads}")
    if not (math.isfinite(args.seconds) and args.seconds >= 0) or args.min_steps < 1:
        parser.error(f"--seconds must be a finite number >= 0 and --min-steps >= 1, received {args.seconds} and {args.min_steps}")
    return args


def measure(step, seconds, min_steps):
    """One warm-up step, then at least min_steps steps and `seconds` of them; returns (steps, mean ms)."""
    step()
    times = []
    started = time.perf_counter()
    while len(times) < min_steps or time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return len(times), 1000.0 * sum(times) / len(times)


def gelu(torch, x):
    # The tanh form, as moebench's `gelu` (@moebench/moe) that every model and MoE expert uses.
    return torch.nn.functional.gelu(x, approximate="tanh")


def dense_ffn(torch):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(TOKENS, D_MODEL, generator=generator)
    w1 = (0.02 * torch.randn(D_MODEL, D_FF, generator=generator)).requires_grad_()
    w2 = (0.02 * torch.randn(D_FF, D_MODEL, generator=generator)).requires_grad_()
    upstream = torch.randn(TOKENS, D_MODEL, generator=generator)

    def step():
        w1.grad = None
        w2.grad = None
        loss = (gelu(torch, x @ w1) @ w2 * upstream).sum()
        loss.backward()

    # Forward's two products (2 x 2 x tokens x d x f) three times: forward and two backward products each.
    return step, TOKENS, 3 * 2 * 2 * TOKENS * D_MODEL * D_FF


def switch_layer(torch):
    generator = torch.Generator().manual_seed(0)
    capacity = math.ceil(TOKENS / EXPERTS * 1.0)
    jitter = 0.01
    balance_weight = 0.01
    router = (math.sqrt(0.1 / D_MODEL) * torch.randn(D_MODEL, EXPERTS, generator=generator)).requires_grad_()
    w1 = (torch.randn(EXPERTS, D_MODEL, D_FF, generator=generator) / math.sqrt(D_MODEL)).requires_grad_()
    b1 = torch.zeros(EXPERTS, 1, D_FF).requires_grad_()
    w2 = (torch.randn(EXPERTS, D_FF, D_MODEL, generator=generator) / math.sqrt(D_FF)).requires_grad_()
    b2 = torch.zeros(EXPERTS, 1, D_MODEL).requires_grad_()
    parameters = [router, w1, b1, w2, b2]
    x = torch.randn(TOKENS, D_MODEL, generator=generator)
    upstream = torch.randn(TOKENS, D_MODEL, generator=generator)

    def step():
        for parameter in parameters:
            parameter.grad = None
        noise = torch.empty_like(x).uniform_(1 - jitter, 1 + jitter)
        probs = torch.softmax((x * noise) @ router, dim=-1)  # [tokens, experts]
        gate, expert = probs.max(dim=-1)
        one_hot = torch.nn.functional.one_hot(expert, EXPERTS).to(x.dtype)
        position = (torch.cumsum(one_hot, dim=0) * one_hot).sum(-1).long() - 1
        kept = position < capacity
        kept_tokens = kept.nonzero(as_tuple=True)[0]
        slots = expert[kept_tokens] * capacity + position[kept_tokens]
        buffer = x.new_zeros(EXPERTS * capacity, D_MODEL).index_copy(0, slots, x[kept_tokens])
        hidden = gelu(torch, torch.baddbmm(b1, buffer.view(EXPERTS, capacity, D_MODEL), w1))
        out = torch.baddbmm(b2, hidden, w2).view(EXPERTS * capacity, D_MODEL)
        y = x.new_zeros(TOKENS, D_MODEL).index_copy(0, kept_tokens, out[slots] * gate[kept_tokens, None])
        balance = EXPERTS * (one_hot.mean(0) * probs.mean(0)).sum()
        loss = (y * upstream).sum() + balance_weight * balance
        loss.backward()

    # Router 2 d E plus one expert's two projections 4 d f per token, three times (as moebench counts).
    return step, TOKENS, 3 * TOKENS * (2 * D_MODEL * EXPERTS + 4 * D_MODEL * D_FF)


def load_builders():
    """Returns ({architecture: build}, {architecture or module: reason it has no builder})."""
    builders, missing = {}, {}
    for name in MODEL_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            missing[name] = f"{name}.py is not in benchmarks/peer"
            continue
        except Exception as error:  # a module that fails to import skips its architectures, with the reason
            missing[name] = f"{name}.py did not import ({type(error).__name__}: {error})"
            continue
        for architecture, build in getattr(module, "BUILDERS", {}).items():
            builders[architecture] = build
    return builders, missing


def training_step(torch, spec, build, training):
    """Builds the model of `spec` and returns (step, tokens, flops, facts), or raises with the reason.

    `facts` has the parameter count and, once a step returned a loss mask, the fraction of
    positions it counts (lossMaskFraction).
    """
    functional = torch.nn.functional
    architecture, config, batch = spec["architecture"], spec["config"], spec["batch"]
    model = build(torch, config, 0)
    model.train()
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    count = sum(parameter.numel() for parameter in parameters)
    if count != spec["parameters"]:
        raise ValueError(f"the PyTorch model has {count} parameters, moebench's has {spec['parameters']}")
    decayed = [parameter for parameter in parameters if parameter.dim() >= 2]
    kept = [parameter for parameter in parameters if parameter.dim() < 2]
    optimiser = torch.optim.AdamW(
        [{"params": decayed, "weight_decay": training["weightDecay"]}, {"params": kept, "weight_decay": 0.0}],
        lr=training["learningRate"], betas=(training["beta1"], training["beta2"]), eps=training["epsilon"],
    )
    vocab, seq_len = config["vocabSize"], config["seqLen"]
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (batch, seq_len + 1), generator=generator)
    inputs, targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
    clip = training["gradientClipNorm"]
    facts = {"parameters": count}

    def step():
        optimiser.zero_grad(set_to_none=True)
        logits, aux_loss, loss_mask = model(inputs)
        if loss_mask is None:
            cross_entropy = functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
        else:
            nll = functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), reduction="none")
            counted = loss_mask.sum()
            cross_entropy = (nll * loss_mask.reshape(-1)).sum() / counted.clamp(min=1)
            facts["lossMaskFraction"] = float(counted) / loss_mask.numel()
        loss = cross_entropy + aux_loss
        loss.backward()
        # moebench's clipScale: scale maxNorm / norm when the norm exceeds maxNorm (0 or inf: no clipping).
        norm = torch.nn.utils.clip_grad_norm_(parameters, clip if clip > 0 else math.inf)
        if math.isfinite(loss.item()) and math.isfinite(norm.item()):
            optimiser.step()

    tokens = batch * seq_len
    return step, tokens, 3 * tokens * spec["forwardFlopsPerToken"], facts


def self_check(torch):
    """Checks the assignment against brute force, the dense models' causality and the MoE models'
    invariants (moe_models.check_invariants: slot assignment and causality); returns failures."""
    import itertools

    import moe_models
    from assignment import balanced_assignment
    from dense_models import BUILDERS, assign_chunks

    failures = []
    generator = torch.Generator().manual_seed(0)
    for trial in range(40):
        tokens = 2 + trial % 7
        experts = 1 + trial % min(tokens, 4)
        affinities = torch.randn(tokens, experts, generator=generator)
        if trial % 5 == 0:
            affinities[1] = affinities[0]  # equal rows, as repeated tokens give
        expert = balanced_assignment(affinities, sweeps=3 * (trial % 2))
        capacity = -(-tokens // experts)
        counts = torch.bincount(expert, minlength=experts)
        if int(counts.max()) > capacity or int(counts.min()) < capacity - 1:
            failures.append(f"assignment {tokens}x{experts}: loads {counts.tolist()} outside {capacity - 1}..{capacity}")
            continue
        best = -math.inf
        for choice in itertools.product(range(experts), repeat=tokens):
            loads = [choice.count(e) for e in range(experts)]
            if max(loads) <= capacity and min(loads) >= capacity - 1:
                best = max(best, sum(float(affinities[s, e]) for s, e in enumerate(choice)))
        total = float(affinities[torch.arange(tokens), expert].sum())
        bound = tokens * 1e-4 * float(affinities.max() - affinities.min()) + 1e-5
        if total < best - bound:
            failures.append(f"assignment {tokens}x{experts}: total {total} below the optimum {best} by more than {bound}")

    for experts in (2, 4, 5):
        scores = torch.randn(3, experts, experts, generator=generator)
        exact = assign_chunks(torch, scores, exact_up_to=6)
        by_auction = assign_chunks(torch, scores, exact_up_to=0)
        totals = [float(scores.reshape(-1, experts)[torch.arange(3 * experts), choice].sum()) for choice in (exact, by_auction)]
        for sequence in range(3):
            if sorted(by_auction[sequence * experts:(sequence + 1) * experts].tolist()) != list(range(experts)):
                failures.append(f"chunk assignment with {experts} experts is not one-to-one in sequence {sequence}")
        if abs(totals[0] - totals[1]) > 3 * experts * 1e-4 * float(scores.max() - scores.min()) + 1e-5:
            failures.append(f"chunk assignment with {experts} experts: auction total {totals[1]} against exact {totals[0]}")

    config = {"vocabSize": 32, "dModel": 16, "layers": 2, "seqLen": 8, "heads": 2, "ffnHidden": 24}
    for architecture in ("transformer", "gmlp"):
        model = BUILDERS[architecture](torch, config, 0)
        tokens = torch.randint(0, 32, (2, 8), generator=generator)
        changed = tokens.clone()
        changed[:, 5] = (changed[:, 5] + 1) % 32
        with torch.no_grad():
            before, after = model(tokens)[0], model(changed)[0]
        if not torch.equal(before[:, :5], after[:, :5]) or torch.equal(before[:, 5:], after[:, 5:]):
            failures.append(f"{architecture}: a change at position 5 must change positions 5.. only")
    failures.extend(moe_models.check_invariants(torch))
    return failures


def main(argv):
    args = parse_args(argv)
    # torch.set_num_threads sets PyTorch's own threads only. Debian's PyTorch multiplies matrices in
    # the system BLAS (OpenBLAS), which starts one thread per core unless these variables are set
    # before it loads. So the BLAS gets the same count here, unless the caller set them.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(variable, str(args.threads))
    try:
        import torch
    except ImportError as error:
        print(json.dumps({"skipped": f"PyTorch is not installed for {sys.executable} ({error}); "
                                     "on Debian: apt-get install python3-torch"}))
        return 0
    torch.set_num_threads(args.threads)
    if args.self_check:
        failures = self_check(torch)
        print(json.dumps({"torch": torch.__version__, "failures": failures}))
        return 1 if failures else 0

    builders, missing = load_builders()
    specs = {f"train-step-{spec['architecture']}": spec for spec in args.models}
    results = []
    for name in args.cases:
        row = {"case": name}
        try:
            if name == "dense-ffn":
                step, tokens, flops = dense_ffn(torch)
            elif name == "switch-layer":
                step, tokens, flops = switch_layer(torch)
            else:
                spec = specs[name]
                build = builders.get(spec["architecture"])
                if build is None:
                    reasons = "; ".join(missing.values()) or "no module exports it"
                    results.append({**row, "status": "skipped",
                                    "reason": f"no PyTorch builder for {spec['architecture']}: {reasons}"})
                    print(f"peer.py: {name} skipped", file=sys.stderr)
                    continue
                step, tokens, flops, facts = training_step(torch, spec, build, args.training)
            steps, mean_ms = measure(step, args.seconds, args.min_steps)
            if name not in LAYER_CASES:
                row.update(facts)
        except Exception as error:  # one failing case becomes a failed row; the others still run
            results.append({**row, "status": "failed", "reason": f"{type(error).__name__}: {error}".split("\n")[0]})
            print(f"peer.py: {name} failed: {error}", file=sys.stderr)
            continue
        results.append({
            **row,
            "status": "measured",
            "steps": steps,
            "meanMs": mean_ms,
            "tokensPerStep": tokens,
            "flopsPerStep": flops,
            "tokensPerSecond": tokens / (mean_ms / 1000),
            "gflops": flops / (mean_ms / 1000) / 1e9,
        })
        print(f"peer.py: {name} {mean_ms:.1f} ms/step", file=sys.stderr)
    blas = "unknown"
    try:
        blas = torch.__config__.show().split("BLAS_INFO=")[1].split(",")[0]
    except (IndexError, AttributeError):
        pass
    print(json.dumps({
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "blas": blas,
        "training": args.training,
        "results": results,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
