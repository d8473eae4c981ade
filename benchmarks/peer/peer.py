#!/usr/bin/env python3
"""PyTorch peer of moebench's benchmark cases, for the ratio table of `pnpm bench --peer`.

Times, on the CPU, the same three steps moebench measures:

- dense-ffn: a two-layer FFN y = GELU(x W1) W2 at 2048 tokens, d=256, f=1024, forward plus the
  gradients of W1 and W2 for a fixed upstream gradient (loss = sum(y * dy));
- switch-layer: one Switch top-1 MoE layer (8 experts of d=256, f=1024, capacity factor 1.0,
  multiplicative router jitter 0.01, load-balancing loss 0.01) at 2048 tokens, forward plus the
  gradients of every parameter;
- train-step-transformer: one training step of the dense pre-LN Transformer, with next-token
  cross-entropy, backward and an Adam update. The model has learned positions, a fused QKV
  projection, causal softmax attention, a GELU FFN, a final layer norm and an LM head tied to the
  embedding. Sizes come from --transformer (the TypeScript runner passes the quick suite's
  compute-matched sizes).

Prints one JSON document on stdout. When PyTorch is missing it prints {"skipped": "<reason>"} and
exits 0, so the caller can show the reason in one line.

Usage: peer.py [--threads N] [--seconds S] [--min-steps N] [--cases a,b] [--transformer JSON]
"""

import argparse
import json
import math
import os
import sys
import time

CASES = ("dense-ffn", "switch-layer", "train-step-transformer")

# Sizes shared with benchmarks/src/cases/dense-ffn.ts and moe-layers.ts.
TOKENS = 2048
D_MODEL = 256
D_FF = 1024
EXPERTS = 8

# The quick suite's shape when the caller passes none: byte vocabulary, 4 layers, 4 heads.
DEFAULT_TRANSFORMER = {
    "vocab": 256,
    "dModel": 256,
    "ffnHidden": 1024,
    "layers": 4,
    "heads": 4,
    "seqLen": 128,
    "batch": 16,
    "initStd": 0.02,
    "layerNormEpsilon": 1e-5,
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description="PyTorch peer timings for moebench's bench cases.")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads; default: MOEBENCH_BLAS_THREADS (the backend's OpenBLAS threads), else the machine's cores")
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per case after warm-up (default 3)")
    parser.add_argument("--min-steps", type=int, default=5, help="minimum measured steps per case (default 5)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from: {', '.join(CASES)}")
    parser.add_argument("--transformer", default=None,
                        help="JSON sizes of the Transformer step: vocab, dModel, ffnHidden, layers, heads, "
                             "seqLen, batch, initStd, layerNormEpsilon (missing keys take the defaults)")
    args = parser.parse_args(argv)
    cases = [name.strip() for name in args.cases.split(",") if name.strip()]
    for name in cases:
        if name not in CASES:
            parser.error(f"--cases: unknown case \"{name}\"; allowed: {', '.join(CASES)}")
    args.cases = cases
    if args.threads is None:
        text = os.environ.get("MOEBENCH_BLAS_THREADS", "")
        if text != "":
            if not text.isdigit() or int(text) < 1:
                parser.error(f"MOEBENCH_BLAS_THREADS must be a positive integer, received \"{text}\"")
            args.threads = int(text)
        else:
            args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if args.threads < 1:
        parser.error(f"--threads must be a positive integer, received {args.threads}")
    if args.seconds < 0 or args.min_steps < 1:
        parser.error(f"--seconds must be >= 0 and --min-steps >= 1, received {args.seconds} and {args.min_steps}")
    sizes = dict(DEFAULT_TRANSFORMER)
    if args.transformer is not None:
        given = json.loads(args.transformer)
        unknown = sorted(set(given) - set(DEFAULT_TRANSFORMER) - {"forwardFlopsPerToken"})
        if unknown:
            parser.error(f"--transformer: unknown keys {unknown}; allowed: {sorted(DEFAULT_TRANSFORMER)}")
        sizes.update(given)
    args.sizes = sizes
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


def transformer_step(torch, sizes):
    nn = torch.nn
    vocab, d, hidden, layers, heads = sizes["vocab"], sizes["dModel"], sizes["ffnHidden"], sizes["layers"], sizes["heads"]
    seq, batch, std, eps = sizes["seqLen"], sizes["batch"], sizes["initStd"], sizes["layerNormEpsilon"]
    if d % heads != 0:
        raise SystemExit(f"--transformer: heads ({heads}) must divide dModel ({d})")
    head_width = d // heads
    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention_norm = nn.LayerNorm(d, eps=eps)
            self.qkv = nn.Linear(d, 3 * d)
            self.attention_out = nn.Linear(d, d)
            self.ffn_norm = nn.LayerNorm(d, eps=eps)
            self.ffn_in = nn.Linear(d, hidden)
            self.ffn_out = nn.Linear(hidden, d)

        def forward(self, x, mask):
            b, t, _ = x.shape
            q, k, v = self.qkv(self.attention_norm(x)).split(d, dim=-1)
            q, k, v = (part.view(b, t, heads, head_width).transpose(1, 2) for part in (q, k, v))
            scores = (q * (1 / math.sqrt(head_width))) @ k.transpose(-1, -2) + mask[:t, :t]
            mixed = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
            x = x + self.attention_out(mixed)
            return x + self.ffn_out(gelu(torch, self.ffn_in(self.ffn_norm(x))))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Parameter(std * torch.randn(vocab, d))
            self.positions = nn.Parameter(std * torch.randn(seq, d))
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.final_norm = nn.LayerNorm(d, eps=eps)
            self.register_buffer("mask", torch.triu(torch.full((seq, seq), -1e9), diagonal=1))

        def forward(self, tokens):
            x = self.embedding[tokens] + self.positions[: tokens.shape[1]]
            for block in self.blocks:
                x = block(x, self.mask)
            return self.final_norm(x) @ self.embedding.T

    model = Model()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (batch, seq + 1), generator=generator)
    inputs, targets = ids[:, :-1], ids[:, 1:]

    def step():
        optimiser.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
        loss.backward()
        optimiser.step()

    tokens = batch * seq
    # moebench's accounting when the caller passes it, else the usual count of the same layers.
    per_token = sizes.get("forwardFlopsPerToken") or (
        layers * (2 * (4 * d * d) + 2 * (2 * seq * d) / 2 + 4 * d * hidden) + 2 * d * vocab
    )
    return step, tokens, 3 * tokens * per_token


def main(argv):
    args = parse_args(argv)
    try:
        import torch
    except ImportError as error:
        print(json.dumps({"skipped": f"PyTorch is not installed for {sys.executable} ({error}); "
                                     "on Debian: apt-get install python3-torch"}))
        return 0
    torch.set_num_threads(args.threads)
    builders = {
        "dense-ffn": lambda: dense_ffn(torch),
        "switch-layer": lambda: switch_layer(torch),
        "train-step-transformer": lambda: transformer_step(torch, args.sizes),
    }
    results = []
    for name in args.cases:
        step, tokens, flops = builders[name]()
        steps, mean_ms = measure(step, args.seconds, args.min_steps)
        results.append({
            "case": name,
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
        "transformer": args.sizes,
        "results": results,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
