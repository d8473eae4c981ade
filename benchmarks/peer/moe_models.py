#!/usr/bin/env python3
"""PyTorch peers of moebench's four MoE language models: switch, gshard, base and hash.

Each model is the one @moebench/models builds for the same ModelConfig, with the same weights and
the same routing, so that `pnpm bench --peer` compares equal work:

- a pre-LN Transformer (token and learned position embeddings, fused QKV projection, causal
  softmax attention, tanh-form GELU FFN, final layer norm, LM head tied to the embedding);
- in every `moeEvery`-th block (1-based) the FFN sublayer is a MoE layer: x + MoE(LN(x)) for Switch,
  GShard and HASH, and for BASE the BASE layer itself, x + sigmoid(x . w_e) FFN_e(LN_e(x)), which
  reads the residual stream without a pre-norm;
- the routing group is the whole batch, and capacity slots are given in time-major order (position 0
  of every sequence, then position 1, ...), so a token competes only with tokens at the same or
  earlier positions. The tensors stay batch-major: only the small per-token expert indices are
  permuted to compute the slots.

Dispatch and combine run by index. A layer whose capacity limits something copies the kept choices
into an [E, C, d] buffer, runs every expert as one batched matrix product on its slots, and adds
the gated outputs back per token. A dropless layer (C >= S, which includes HASH without a capacity
factor, as moebench's isDroplessPlan) sorts the choices by expert and runs each expert on exactly its
rows, so the busiest expert's load does not pad the others. The BASE layer keeps its buffer, as in
moebench. The BASE balanced assignment is the vectorised auction of assignment.py, next to this file.

Contract with peer.py: `BUILDERS[architecture](torch, config, seed)` returns a torch.nn.Module
whose `forward(tokens)` takes int64 token ids [batch, seqLen] and returns
`(logits [batch, seqLen, vocab], aux_loss (0-dim tensor), None)`. `config` is moebench's ModelConfig
as JSON, with the same defaults and the same layer options.

Usage: moe_models.py [--check --configs JSON [--expect JSON] [--batch N] [--steps N]] [--compare FILE] [--threads N]
"""

import argparse
import json
import math
import sys
import time

# The balanced assignment of the BASE layers, shared with the other peer models (benchmarks/peer/assignment.py).
from assignment import balanced_assignment

ARCHITECTURES = ("switch", "gshard", "base", "hash")

# ModelConfig fields and their defaults (packages/models/src/config.ts). None marks a required field,
# except ffnHidden, which defaults to 4 x dModel in the Transformer family.
MODEL_FIELDS = {
    "vocabSize": None,
    "dModel": None,
    "layers": None,
    "seqLen": None,
    "heads": 4,
    "ffnHidden": None,
    "experts": 4,
    "moeEvery": 2,
    "initStd": 0.02,
    "layerNormEpsilon": 1e-5,
}
OPTION_FIELDS = ("switch", "gshard", "base", "hash", "gmlp", "smlp")

# Each layer package's options as the model passes them, with their defaults. The model sets
# dModel, numExperts, hiddenSize, seed and name itself. GShard's evalCapacityTokenFraction is 1 in
# the model (nothing dropped in evaluation) against 0.25 in the package.
LAYER_DEFAULTS = {
    "switch": {
        "capacityFactor": 1.0,
        "evalCapacityFactor": 2.0,
        "jitterEps": 0.01,
        "balanceLossWeight": 0.01,
        "zLossWeight": 0.0,
        "routerInitScale": 0.1,
        "expertInitScale": 1.0,
        "activation": "gelu",
    },
    "gshard": {
        "secondExpertPolicy": "sampling",
        "evalSecondExpertPolicy": "all",
        "normalizeGates": "after-capacity",
        "capacityFactor": 1.0,
        "evalCapacityTokenFraction": 1.0,
        "balanceLossWeight": 0.01,
        "zLossWeight": 0.0,
        "routerInitScale": 1.0,
        "expertInitScale": 1.0,
        "activation": "gelu",
    },
    "base": {
        "sublayers": 1,
        "auctionEpsilon": 1e-4,
        "auctionEpsilonScaling": 8.0,
        "centroidGain": 0.1,
        "expertInitScale": 1.0,
        "activation": "gelu",
    },
    "hash": {
        "kind": "random",
        "unigramCounts": None,
        "capacityFactor": 0.0,
        "expertInitScale": 1.0,
        "activation": "gelu",
    },
}
CHOICES = {
    "activation": ("gelu", "relu"),
    "secondExpertPolicy": ("sampling", "random", "all"),
    "evalSecondExpertPolicy": ("sampling", "random", "all"),
    "normalizeGates": ("after-capacity", "before-capacity"),
    "kind": ("random", "balanced", "bigram"),
}

# The smallest float32 step above 1, which keeps GShard's gate denominator away from zero.
FLOAT32_EPSILON = 1.1920928955078125e-7


def resolve_config(architecture, config):
    """Validate a ModelConfig for `architecture` and fill in every default, as moebench does.

    Returns a dict with the model fields and `options`, the layer options of the architecture.
    Raises ValueError naming the field, the value received and what is allowed.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; allowed: {', '.join(ARCHITECTURES)}")
    if not isinstance(config, dict):
        raise ValueError(f"config must be a JSON object, received {type(config).__name__}")
    for key in config:
        if key not in MODEL_FIELDS and key not in OPTION_FIELDS:
            raise ValueError(f"config: unknown field {key!r}; allowed: {', '.join([*MODEL_FIELDS, *OPTION_FIELDS])}")

    resolved = {}
    for field, default in MODEL_FIELDS.items():
        value = config.get(field, default)
        if field == "ffnHidden" and value is None:
            value = 4 * resolved["dModel"]
        if value is None:
            raise ValueError(f"config: {field} is missing; allowed: a positive integer")
        if field in ("initStd", "layerNormEpsilon"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"config: {field} must be a finite number above 0, received {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"config: {field} must be a positive integer, received {value!r}")
        resolved[field] = value
    if resolved["dModel"] % resolved["heads"] != 0:
        raise ValueError(f"config: heads must divide dModel ({resolved['dModel']}), received heads = {resolved['heads']}")
    if resolved["moeEvery"] > resolved["layers"]:
        raise ValueError(f"config: moeEvery must be at most layers ({resolved['layers']}), received {resolved['moeEvery']}")
    if architecture == "gshard" and resolved["experts"] < 2:
        raise ValueError(f"config: gshard routes each token to 2 experts, so experts must be at least 2, received {resolved['experts']}")

    given = config.get(architecture, {})
    if not isinstance(given, dict):
        raise ValueError(f"config: {architecture} must be an options object, received {given!r}")
    options = dict(LAYER_DEFAULTS[architecture])
    for key, value in given.items():
        if key not in options:
            raise ValueError(f"config: unknown option {architecture}.{key}; allowed: {', '.join(options)}")
        if key in CHOICES and value not in CHOICES[key]:
            raise ValueError(f"config: {architecture}.{key} must be one of {', '.join(CHOICES[key])}, received {value!r}")
        options[key] = value
    check_layer_options(architecture, options, resolved)
    resolved["options"] = options
    return resolved


def check_layer_options(architecture, options, resolved):
    """Check the numeric layer options against the ranges the moebench packages allow."""
    def number(key, low=-math.inf, high=math.inf, above=False):
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"config: {architecture}.{key} must be a finite number, received {value!r}")
        if value < low or value > high or (above and value <= low):
            bound = f"above {low}" if above else f"in [{low}, {high}]"
            raise ValueError(f"config: {architecture}.{key} must be {bound}, received {value!r}")

    number("expertInitScale", 0)
    if architecture == "switch":
        number("capacityFactor")
        number("evalCapacityFactor")
        number("jitterEps", 0, 0.999999)
        number("balanceLossWeight", 0)
        number("zLossWeight", 0)
        number("routerInitScale", 0)
    elif architecture == "gshard":
        number("capacityFactor")
        number("evalCapacityTokenFraction", -math.inf, 1)
        number("balanceLossWeight", 0)
        number("zLossWeight", 0)
        number("routerInitScale", 0)
    elif architecture == "base":
        if isinstance(options["sublayers"], bool) or not isinstance(options["sublayers"], int) or options["sublayers"] < 1:
            raise ValueError(f"config: base.sublayers must be a positive integer, received {options['sublayers']!r}")
        number("auctionEpsilon", 0, above=True)
        number("auctionEpsilonScaling", 1, above=True)
        number("centroidGain", 0)
    else:
        number("capacityFactor")
        counts = options["unigramCounts"]
        if options["kind"] == "balanced":
            if counts is None:
                raise ValueError("config: hash.unigramCounts is missing; kind \"balanced\" builds its table from the corpus's unigram counts")
            if len(counts) != resolved["vocabSize"]:
                raise ValueError(f"config: hash.unigramCounts must have vocabSize = {resolved['vocabSize']} entries, received {len(counts)}")
            for token, count in enumerate(counts):
                if not isinstance(count, (int, float)) or not math.isfinite(count) or count < 0:
                    raise ValueError(f"config: hash.unigramCounts[{token}] must be a finite number >= 0, received {count!r}")


def slot_capacity(tokens, experts, choices, capacity_factor):
    """Return C = ceil(choices x S / E x factor) clamped to [1, S], or S (nothing dropped) for a factor <= 0."""
    if capacity_factor <= 0:
        return tokens
    return min(tokens, max(1, math.ceil(choices * tokens / experts * capacity_factor)))


def gshard_capacity(tokens, experts, capacity_factor, eval_fraction, training):
    """Return GShard's slots per expert: floor(2 ceil(S / E) x factor) in training, ceil(fraction x S) in evaluation."""
    if not training and eval_fraction > 0:
        capacity = math.ceil(eval_fraction * tokens)
    elif capacity_factor <= 0:
        capacity = tokens
    else:
        capacity = math.floor(2 * math.ceil(tokens / experts) * capacity_factor)
    return min(tokens, max(1, capacity))


def assign_slots(torch, experts, order, num_experts, capacity):
    """Give each choice a slot in its expert, counting in routing order.

    `experts` is [k, S] (choice j of every token in row j, batch-major tokens, -1 for no choice) and
    `order` [S] lists the batch-major token of each routing position. Every first choice is counted
    before any second choice, and a dropped choice still advances its expert's count, as moebench's
    `assignSlots`. Returns the slot of each choice in the [E * C] buffer, [k, S], and the kept mask.
    """
    k, tokens = experts.shape
    routed = experts[:, order]  # [k, S] in routing order
    valid = routed >= 0
    one_hot = torch.nn.functional.one_hot(routed.clamp(min=0), num_experts) * valid.unsqueeze(-1)  # [k, S, E]
    counts = one_hot.reshape(k * tokens, num_experts).cumsum(0).reshape(k, tokens, num_experts)
    position = (counts * one_hot).sum(-1) - 1  # [k, S]
    kept_routed = valid & (position < capacity)
    slot_routed = routed.clamp(min=0) * capacity + position.clamp(min=0)
    # Back to batch-major token order.
    slots = torch.empty_like(slot_routed)
    slots[:, order] = slot_routed
    kept = torch.empty_like(kept_routed)
    kept[:, order] = kept_routed
    return slots, kept


def dispatch(x, slots, kept, buffer_rows):
    """Copy each kept choice's token row into its slot: x [S, d] -> [E * C, d], zeros where unused.

    Returns the buffer and, for each kept choice, its token, its slot and its index j x S + s.
    """
    tokens = slots.shape[1]
    choice = kept.reshape(-1).nonzero().squeeze(1)  # kept choices, index j * S + s
    token = choice % tokens
    slot = slots.reshape(-1).index_select(0, choice)
    buffer = x.new_zeros(buffer_rows, x.shape[1]).index_copy(0, slot, x.index_select(0, token))
    return buffer, token, slot, choice


def combine(outputs, gates, token, slot, choice, tokens):
    """Sum gate x expert output over each token's kept choices: [E * C, d] -> [S, d]. Gates None means gate 1."""
    weighted = outputs.index_select(0, slot)
    if gates is not None:
        weighted = weighted * gates.t().reshape(-1).index_select(0, choice).unsqueeze(1)
    return outputs.new_zeros(tokens, outputs.shape[1]).index_add(0, token, weighted)


def group_by_expert(torch, experts, kept, num_experts):
    """Sort the kept choices by expert, for a layer that runs each expert on its own rows.

    `experts` is [k, S] (choice j of every token in row j, -1 for no choice) and `kept` [k, S] the
    choices that run. Returns, in expert order (a stable sort, so batch-major inside an expert), the
    token of each kept choice [N], its index j x S + s [N], and the rows of each expert as a list of E ints.
    """
    tokens = experts.shape[1]
    choice = kept.reshape(-1).nonzero().squeeze(1)
    expert, position = experts.reshape(-1).index_select(0, choice).sort(stable=True)
    choice = choice.index_select(0, position)
    counts = torch.bincount(expert, minlength=num_experts).tolist()
    return choice % tokens, choice, counts


def add_to_tokens(outputs, gates, token, choice, tokens):
    """Sum gate x output of each kept choice into its token: outputs [N, d], listed as `token` and `choice`, -> [S, d].

    Gates [S, k], or None for gate 1. The gradient of index_add is a row gather of the upstream gradient.
    """
    if gates is not None:
        outputs = outputs * gates.t().reshape(-1).index_select(0, choice).unsqueeze(1)
    return outputs.new_zeros(tokens, outputs.shape[1]).index_add(0, token, outputs)


def balance_loss(torch, probs, first, weight):
    """Switch-form load-balancing loss, weight x E x sum_e f_e P_e, with f the first-choice fractions (a constant)."""
    num_experts = probs.shape[1]
    fractions = torch.bincount(first, minlength=num_experts).to(probs.dtype) / first.shape[0]
    return weight * num_experts * (fractions * probs.mean(0)).sum()


def z_loss(torch, logits, weight):
    """Router z-loss, weight x mean over tokens of logsumexp(logits)^2."""
    return weight * torch.logsumexp(logits, dim=1).square().mean()


def build_hash_table(torch, options, vocab, experts, seed):
    """Build HASH's table of token id -> expert, [V] int64, as @moebench/hash-layers builds each kind.

    random: a uniform draw per token id from a stream seeded by `seed`. balanced: token ids by
    decreasing count each go to the least-loaded expert, unseen ids round-robin. bigram: none (the
    expert is a seeded hash of the previous and current id, computed per token in `hash_bigram`).
    """
    kind = options["kind"]
    if kind == "random":
        generator = torch.Generator().manual_seed(seed)
        return torch.randint(0, experts, (vocab,), generator=generator)
    if kind == "balanced":
        counts = options["unigramCounts"]
        table = torch.zeros(vocab, dtype=torch.long)
        loads = [0.0] * experts
        unseen = 0
        for token in sorted(range(vocab), key=lambda index: (-counts[index], index)):
            if counts[token] == 0:
                table[token] = unseen % experts
                unseen += 1
                continue
            lightest = min(range(experts), key=lambda expert: (loads[expert], expert))
            table[token] = lightest
            loads[lightest] += counts[token]
        return table
    return None


def hash_bigram(torch, previous, current, seed, experts):
    """Hash (previous id + 1, current id) with a 32-bit seeded mix (murmur3's finaliser per word), modulo E."""
    mask = 0xFFFFFFFF
    value = torch.full_like(current, seed & mask)
    for word in (previous + 1, current):
        value = ((value ^ word) * 0x9E3779B1) & mask
        value = value ^ (value >> 16)
        value = (value * 0x85EBCA6B) & mask
        value = value ^ (value >> 13)
        value = (value * 0xC2B2AE35) & mask
        value = value ^ (value >> 16)
    return value % experts


_MODULES = {}


def define_modules(torch):
    """Define the nn.Module classes over `torch` (imported by the caller), once per torch module."""
    key = id(torch)
    if key in _MODULES:
        return _MODULES[key]
    nn = torch.nn
    functional = nn.functional

    def truncated_normal(shape, std):
        # moebench draws its weights from a normal truncated at two standard deviations.
        return nn.init.trunc_normal_(torch.empty(*shape), std=std, a=-2 * std, b=2 * std)

    def activate(x, activation):
        # The tanh form of GELU, as moebench's `gelu` (@moebench/moe).
        return functional.gelu(x, approximate="tanh") if activation == "gelu" else functional.relu(x)

    class Linear(nn.Module):
        """y = x W^T + b, W [out, in] drawn with `std` and b zero: moebench's Linear, its weight transposed."""

        def __init__(self, inputs, outputs, std):
            super().__init__()
            self.weight = nn.Parameter(truncated_normal((outputs, inputs), std))
            self.bias = nn.Parameter(torch.zeros(outputs))

        def forward(self, x):
            return functional.linear(x, self.weight, self.bias)

    class Attention(nn.Module):
        """Causal multi-head self-attention with a fused QKV projection and a -1e9 mask above the diagonal."""

        def __init__(self, config, residual_std):
            super().__init__()
            d, heads = config["dModel"], config["heads"]
            self.heads = heads
            self.head_width = d // heads
            self.qkv = Linear(d, 3 * d, config["initStd"])
            self.output = Linear(d, d, residual_std)

        def forward(self, x, batch, time, mask):
            d = x.shape[1]
            heads, width = self.heads, self.head_width
            qkv = self.qkv(x).view(batch, time, 3, heads, width).permute(2, 0, 3, 1, 4)
            q, k, v = (part.reshape(batch * heads, time, width) for part in qkv)
            # mask + (q k^T) / sqrt(width) in one product.
            scores = torch.baddbmm(mask[:time, :time], q, k.transpose(1, 2), alpha=1 / math.sqrt(width))
            mixed = torch.bmm(torch.softmax(scores, dim=-1), v)
            merged = mixed.view(batch, heads, time, width).transpose(1, 2).reshape(batch * time, d)
            return self.output(merged)

    class DenseFeedForward(nn.Module):
        """The dense FFN sublayer x + W2 GELU(W1 LN(x) + b1) + b2."""

        def __init__(self, config, residual_std):
            super().__init__()
            d, hidden = config["dModel"], config["ffnHidden"]
            self.norm = nn.LayerNorm(d, eps=config["layerNormEpsilon"])
            self.input = Linear(d, hidden, config["initStd"])
            self.output = Linear(hidden, d, residual_std)

        def forward(self, x, context):
            return x + self.output(activate(self.input(self.norm(x)), "gelu")), None

    class ExpertBank(nn.Module):
        """E two-layer experts as stacked weights W1 [E, d, f], b1 [E, f], W2 [E, f, d], b2 [E, d].

        W1 and W2 are drawn with std sqrt(initScale / fanIn), truncated at two std. The biases start
        at zero, and so does W2 when `zero_output` is set (BASE).
        """

        def __init__(self, experts, d, hidden, init_scale, activation, zero_output=False):
            super().__init__()
            self.activation = activation
            self.w1 = nn.Parameter(truncated_normal((experts, d, hidden), math.sqrt(init_scale / d)))
            self.b1 = nn.Parameter(torch.zeros(experts, hidden))
            w2 = torch.zeros(experts, hidden, d) if zero_output else truncated_normal((experts, hidden, d), math.sqrt(init_scale / hidden))
            self.w2 = nn.Parameter(w2)
            self.b2 = nn.Parameter(torch.zeros(experts, d))

        def forward(self, buffer):
            """Run expert e on slots buffer[e]: [E, C, d] -> [E, C, d]."""
            hidden = activate(torch.baddbmm(self.b1.unsqueeze(1), buffer, self.w1), self.activation)
            return torch.baddbmm(self.b2.unsqueeze(1), hidden, self.w2)

        def forward_grouped(self, rows, counts):
            """Run each expert on its own rows: `rows` [N, d] sorted by expert, counts[e] rows of expert e -> [N, d].

            Two products per expert on exactly its n_e rows, so no padding row is computed. unbind
            gives views of the stacked weights, and its gradient stacks the E pieces back in one copy.
            """
            weights = zip(self.w1.unbind(0), self.b1.unbind(0), self.w2.unbind(0), self.b2.unbind(0))
            outputs = [
                torch.addmm(b2, activate(torch.addmm(b1, block, w1), self.activation), w2)
                for block, (w1, b1, w2, b2) in zip(rows.split(counts), weights)
            ]
            return torch.cat(outputs)

    class RoutedFeedForward(nn.Module):
        """x + MoE(LN(x)) with a router in `route`; Switch, GShard and HASH differ only in their routing."""

        def __init__(self, config):
            super().__init__()
            self.options = config["options"]
            self.experts = config["experts"]
            self.norm = nn.LayerNorm(config["dModel"], eps=config["layerNormEpsilon"])
            self.bank = ExpertBank(
                config["experts"], config["dModel"], config["ffnHidden"],
                self.options["expertInitScale"], self.options["activation"],
            )
            # Rows per expert of the last forward call when it ran each expert on its own rows (a
            # list of E ints), None when it used the [E, C, d] buffer or before the first call.
            self.dropless_loads = None

        def forward(self, x, context):
            features = self.norm(x)  # [S, d], batch-major
            tokens = features.shape[0]
            experts, gates, capacity, aux_loss = self.route(features, context)
            if capacity >= tokens:
                # Dropless, as moebench's isDroplessPlan: a token's choices go to distinct experts, so
                # C >= S keeps every choice, and each expert runs on exactly its rows.
                kept = experts >= 0
                gates = self.normalize_gates(gates, kept)
                token, choice, counts = group_by_expert(torch, experts, kept, self.experts)
                self.dropless_loads = counts
                outputs = self.bank.forward_grouped(features.index_select(0, token), counts)
                return x + add_to_tokens(outputs, gates, token, choice, tokens), aux_loss
            self.dropless_loads = None
            slots, kept = assign_slots(torch, experts, context["order"], self.experts, capacity)
            gates = self.normalize_gates(gates, kept)
            buffer, token, slot, choice = dispatch(features, slots, kept, self.experts * capacity)
            outputs = self.bank(buffer.view(self.experts, capacity, -1)).view(self.experts * capacity, -1)
            return x + combine(outputs, gates, token, slot, choice, tokens), aux_loss

        def normalize_gates(self, gates, kept):
            return gates

    class SwitchFeedForward(RoutedFeedForward):
        """Switch Transformer routing: top-1 of softmax(jitter(x) Wr), capacity ceil(S / E x factor)."""

        def __init__(self, config):
            super().__init__(config)
            d, experts = config["dModel"], config["experts"]
            self.router = nn.Parameter(truncated_normal((d, experts), math.sqrt(self.options["routerInitScale"] / d)))

        def route(self, features, context):
            options = self.options
            router_input = features
            if self.training and options["jitterEps"] > 0:
                # Multiplicative noise on the router's input only; the experts see the features unjittered.
                eps = options["jitterEps"]
                router_input = features * torch.empty_like(features).uniform_(1 - eps, 1 + eps)
            logits = router_input @ self.router  # [S, E]
            probs = torch.softmax(logits, dim=1)
            gate, expert = probs.max(dim=1)
            factor = options["capacityFactor"] if self.training else options["evalCapacityFactor"]
            capacity = slot_capacity(features.shape[0], self.experts, 1, factor)
            aux_loss = routing_losses(torch, options, logits, probs, expert)
            return expert.unsqueeze(0), gate.unsqueeze(1), capacity, aux_loss

    class GShardFeedForward(RoutedFeedForward):
        """GShard top-2 routing in fairseq's form: second-expert policy, capacity, renormalised gates."""

        def __init__(self, config):
            super().__init__(config)
            d, experts = config["dModel"], config["experts"]
            self.router = nn.Parameter(truncated_normal((d, experts), math.sqrt(self.options["routerInitScale"] / d)))

        def route(self, features, context):
            options = self.options
            tokens = features.shape[0]
            logits = features @ self.router  # [S, E]
            probs = torch.softmax(logits, dim=1)
            first_gate, first = probs.max(dim=1)
            policy = options["secondExpertPolicy"] if self.training else options["evalSecondExpertPolicy"]
            masked = (logits if policy == "sampling" else probs).detach().scatter(1, first.unsqueeze(1), -math.inf)
            if policy == "sampling":
                # Gumbel-max: argmax of logits + Gumbel noise draws from softmax(logits) without the first expert.
                masked = masked - torch.empty_like(masked).exponential_().log()
            second = masked.argmax(dim=1)
            second_gate = probs.gather(1, second.unsqueeze(1)).squeeze(1)
            second_routed = second
            if policy == "random":
                share = second_gate
                if options["normalizeGates"] == "before-capacity":
                    share = second_gate / (first_gate + second_gate).clamp(min=FLOAT32_EPSILON)
                keep = torch.rand(tokens) < 2 * share.detach()
                second_routed = torch.where(keep, second, torch.full_like(second, -1))
            experts = torch.stack([first, second_routed])  # [2, S]
            capacity = gshard_capacity(
                tokens, self.experts, options["capacityFactor"], options["evalCapacityTokenFraction"], self.training,
            )
            gates = torch.stack([first_gate, second_gate], dim=1)  # [S, 2]
            aux_loss = routing_losses(torch, options, logits, probs, first)
            return experts, gates, capacity, aux_loss

        def normalize_gates(self, gates, kept):
            # Over the kept choices (after capacity) or over both chosen experts (before capacity).
            if self.options["normalizeGates"] == "after-capacity":
                gates = gates * kept.t()
            return gates / gates.sum(1, keepdim=True).clamp(min=FLOAT32_EPSILON)

    class HashFeedForward(RoutedFeedForward):
        """HASH Layers routing: a fixed table from token ids to experts, gate 1, no router parameters."""

        def __init__(self, config, table_seed):
            super().__init__(config)
            self.table_seed = table_seed
            table = build_hash_table(torch, self.options, config["vocabSize"], config["experts"], table_seed)
            self.register_buffer("table", table if table is not None else torch.zeros(0, dtype=torch.long))

        def route(self, features, context):
            tokens = features.shape[0]
            ids = context["ids"]
            if self.options["kind"] == "bigram":
                expert = hash_bigram(torch, context["previous_ids"], ids, self.table_seed, self.experts)
            else:
                expert = self.table[ids]
            # Without a capacity factor C = S: nothing is dropped, and the layer runs each expert on
            # exactly its tokens, however skewed the loads.
            capacity = slot_capacity(tokens, self.experts, 1, self.options["capacityFactor"])
            # Every gate is 1, so None skips the product by ones.
            return expert.unsqueeze(0), None, capacity, None

    class BaseFeedForward(nn.Module):
        """The BASE layer: y = x + sigmoid(x . w_e) FFN_e(LN_e(x)), e from a balanced assignment in training.

        It reads the residual stream itself and carries its own residual. Each expert has its own layer
        norm (scale and bias [E, d]) and an output projection that starts at zero.
        """

        def __init__(self, config):
            super().__init__()
            options = config["options"]
            d, experts = config["dModel"], config["experts"]
            self.options = options
            self.experts = experts
            self.epsilon = config["layerNormEpsilon"]
            self.centroids = nn.Parameter(nn.init.orthogonal_(torch.empty(experts, d), gain=options["centroidGain"]))
            self.norm_scales = nn.ParameterList(nn.Parameter(torch.ones(experts, d)) for _ in range(options["sublayers"]))
            self.norm_biases = nn.ParameterList(nn.Parameter(torch.zeros(experts, d)) for _ in range(options["sublayers"]))
            self.banks = nn.ModuleList(
                ExpertBank(experts, d, config["ffnHidden"], options["expertInitScale"], options["activation"], zero_output=True)
                for _ in range(options["sublayers"])
            )

        def forward(self, x, context):
            tokens, d = x.shape
            experts = self.experts
            affinities = x @ self.centroids.t()  # [S, E]
            with torch.no_grad():
                if self.training:
                    if tokens < experts:
                        raise ValueError(f"BASE: balanced assignment in training needs at least as many tokens as experts, received {tokens} tokens for {experts} experts")
                    # The rows go in routing order, as moebench passes them, so that tokens with equal
                    # affinities (the same id at position 0, for example) break ties the same way.
                    order = context["order"]
                    expert = torch.empty(tokens, dtype=torch.long)
                    expert[order] = balanced_assignment(
                        affinities[order], self.options["auctionEpsilon"], self.options["auctionEpsilonScaling"],
                    )
                    capacity = math.ceil(tokens / experts)
                else:
                    expert = affinities.argmax(dim=1)
                    capacity = int(torch.bincount(expert, minlength=experts).max())
            gates = torch.sigmoid(affinities.gather(1, expert.unsqueeze(1)))  # [S, 1]
            slots, kept = assign_slots(torch, expert.unsqueeze(0), context["order"], experts, capacity)
            buffer, token, slot, choice = dispatch(x, slots, kept, experts * capacity)
            hidden = buffer.view(experts, capacity, d)
            update = None
            for scale, bias, bank in zip(self.norm_scales, self.norm_biases, self.banks):
                normalized = functional.layer_norm(hidden, (d,), eps=self.epsilon) * scale.unsqueeze(1) + bias.unsqueeze(1)
                output = bank(normalized)
                update = output if update is None else update + output
                if len(self.banks) > 1:
                    hidden = hidden + output
            return x + combine(update.view(experts * capacity, d), gates, token, slot, choice, tokens), None

    class Block(nn.Module):
        """x <- x + Attention(LN(x)), then the FFN sublayer, dense or MoE (which adds its own residual)."""

        def __init__(self, config, feed_forward, residual_std):
            super().__init__()
            self.attention_norm = nn.LayerNorm(config["dModel"], eps=config["layerNormEpsilon"])
            self.attention = Attention(config, residual_std)
            self.feed_forward = feed_forward

        def forward(self, x, context):
            x = x + self.attention(self.attention_norm(x), context["batch"], context["time"], context["mask"])
            return self.feed_forward(x, context)

    class MoeLanguageModel(nn.Module):
        """The MoE Transformer language model of `architecture`; see the module docstring."""

        def __init__(self, architecture, config, seed):
            super().__init__()
            self.architecture = architecture
            self.config = config
            d, std, layers = config["dModel"], config["initStd"], config["layers"]
            residual_std = std / math.sqrt(2 * layers)
            self.embedding = nn.Parameter(truncated_normal((config["vocabSize"], d), std))
            self.positions = nn.Parameter(truncated_normal((config["seqLen"], d), std))
            blocks = []
            for index in range(layers):
                if (index + 1) % config["moeEvery"] == 0:
                    feed_forward = self.sparse_layer(config, seed, index)
                else:
                    feed_forward = DenseFeedForward(config, residual_std)
                blocks.append(Block(config, feed_forward, residual_std))
            self.blocks = nn.ModuleList(blocks)
            self.final_norm = nn.LayerNorm(d, eps=config["layerNormEpsilon"])
            seq = config["seqLen"]
            self.register_buffer("mask", torch.triu(torch.full((seq, seq), -1e9), diagonal=1))
            self.orders = {}

        def sparse_layer(self, config, seed, index):
            if self.architecture == "switch":
                return SwitchFeedForward(config)
            if self.architecture == "gshard":
                return GShardFeedForward(config)
            if self.architecture == "hash":
                # One table per layer from the model seed and the block, as moebench derives one per
                # block. The tables differ from moebench's, which changes the loads but not the work.
                return HashFeedForward(config, (seed * 1_000_003 + index) & 0xFFFFFFFF)
            return BaseFeedForward(config)

        def routing_order(self, batch, time):
            """Return the batch-major row of each time-major routing position, [batch * time]."""
            key = (batch, time)
            if key not in self.orders:
                self.orders[key] = torch.arange(batch * time).view(batch, time).t().reshape(-1)
            return self.orders[key]

        def forward(self, tokens):
            batch, time = tokens.shape
            config = self.config
            if time > config["seqLen"]:
                raise ValueError(f"{self.architecture}: tokens must have at most seqLen = {config['seqLen']} positions, received {time}")
            ids = tokens.reshape(-1)
            previous = torch.cat([torch.full((batch, 1), -1, dtype=tokens.dtype), tokens[:, :-1]], dim=1).reshape(-1)
            context = {
                "batch": batch,
                "time": time,
                "mask": self.mask,
                "ids": ids,
                "previous_ids": previous,
                "order": self.routing_order(batch, time),
            }
            x = (self.embedding[tokens] + self.positions[:time]).view(batch * time, -1)
            aux_losses = []
            for block in self.blocks:
                x, aux_loss = block(x, context)
                if aux_loss is not None:
                    aux_losses.append(aux_loss)
            logits = self.final_norm(x) @ self.embedding.t()
            aux_loss = torch.stack(aux_losses).sum() if aux_losses else logits.new_zeros(())
            return logits.view(batch, time, -1), aux_loss, None

    modules = argparse.Namespace(MoeLanguageModel=MoeLanguageModel, ExpertBank=ExpertBank)
    _MODULES[key] = modules
    return modules


def routing_losses(torch, options, logits, probs, first):
    """Sum the weighted balance loss and z-loss, each only when its weight is positive; None when neither is."""
    losses = []
    if options["balanceLossWeight"] > 0:
        losses.append(balance_loss(torch, probs, first, options["balanceLossWeight"]))
    if options["zLossWeight"] > 0:
        losses.append(z_loss(torch, logits, options["zLossWeight"]))
    if not losses:
        return None
    return losses[0] if len(losses) == 1 else losses[0] + losses[1]


def build_model(architecture, torch, config, seed):
    """Build the `architecture` model from a moebench ModelConfig, initial weights drawn from `seed`."""
    resolved = resolve_config(architecture, config)
    modules = define_modules(torch)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = modules.MoeLanguageModel(architecture, resolved, seed)
    return model.train()


BUILDERS = {name: (lambda torch, config, seed, name=name: build_model(name, torch, config, seed)) for name in ARCHITECTURES}


def check_model(torch, architecture, config, batch=16, seed=0, steps=3):
    """Build a model, run `steps` forward + backward passes on random tokens, and return what was measured.

    Returns a dict with the parameter count, the mean and minimum wall-clock ms of a forward +
    backward pass after one warm-up pass, the mean CPU ms of the process over the same passes, the
    last loss and whether every gradient is finite. CPU time counts all threads and no waiting, so
    on a shared machine it shows the work that the wall clock mixes with the wait for a core.
    """
    model = build_model(architecture, torch, config, seed)
    vocab, seq = config["vocabSize"], config["seqLen"]
    generator = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, vocab, (batch, seq + 1), generator=generator)
    inputs, targets = ids[:, :-1], ids[:, 1:]

    def step():
        model.zero_grad(set_to_none=True)
        logits, aux_loss, _ = model(inputs)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1)) + aux_loss
        loss.backward()
        return loss

    step()
    times = []
    cpu_times = []
    for _ in range(steps):
        started, cpu_started = time.perf_counter(), time.process_time()
        loss = step()
        times.append(1000 * (time.perf_counter() - started))
        cpu_times.append(1000 * (time.process_time() - cpu_started))
    gradients = [parameter.grad for parameter in model.parameters() if parameter.grad is not None]
    return {
        "architecture": architecture,
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "meanMs": sum(times) / len(times),
        "minMs": min(times),
        "meanCpuMs": sum(cpu_times) / len(cpu_times),
        "loss": float(loss),
        "finiteGradients": all(bool(torch.isfinite(gradient).all()) for gradient in gradients),
        "parametersWithGradient": len(gradients),
    }


def moebench_parameter_names(model):
    """Map each moebench variable name (`namedVariables` of @moebench/models) to this model's parameter.

    Returns {moebench name: (parameter, transpose)}: moebench's Linear stores W [in, out], where
    nn.Linear-style weights here are [out, in].
    """
    names = {"embedding": (model.embedding, False), "positions": (model.positions, False)}
    names["finalNorm.gamma"] = (model.final_norm.weight, False)
    names["finalNorm.beta"] = (model.final_norm.bias, False)
    for index, block in enumerate(model.blocks):
        prefix = f"block{index}"
        names[f"{prefix}.attentionNorm.gamma"] = (block.attention_norm.weight, False)
        names[f"{prefix}.attentionNorm.beta"] = (block.attention_norm.bias, False)
        for part in ("qkv", "output"):
            linear = getattr(block.attention, part)
            names[f"{prefix}.attention.{part}.weight"] = (linear.weight, True)
            names[f"{prefix}.attention.{part}.bias"] = (linear.bias, False)
        layer = block.feed_forward
        if hasattr(layer, "input"):
            names[f"{prefix}.ffnNorm.gamma"] = (layer.norm.weight, False)
            names[f"{prefix}.ffnNorm.beta"] = (layer.norm.bias, False)
            for part in ("input", "output"):
                linear = getattr(layer, part)
                names[f"{prefix}.ffn.{part}.weight"] = (linear.weight, True)
                names[f"{prefix}.ffn.{part}.bias"] = (linear.bias, False)
            continue
        # The MoE layer's variables in the order its package lists them.
        if hasattr(layer, "centroids"):
            ordered = [layer.centroids]
            for scale, bias, bank in zip(layer.norm_scales, layer.norm_biases, layer.banks):
                ordered += [scale, bias, bank.w1, bank.b1, bank.w2, bank.b2]
        else:
            names[f"{prefix}.moe.norm.gamma"] = (layer.norm.weight, False)
            names[f"{prefix}.moe.norm.beta"] = (layer.norm.bias, False)
            router = [layer.router] if hasattr(layer, "router") else []
            ordered = router + [layer.bank.w1, layer.bank.b1, layer.bank.w2, layer.bank.b2]
        for position, parameter in enumerate(ordered):
            names[f"{prefix}.moe.{position}"] = (parameter, False)
    return names


def load_moebench_weights(torch, model, variables, tables):
    """Copy moebench's variables ({name: {shape, values}}) and HASH tables into `model`.

    Raises ValueError for a variable this model lacks, a shape that differs, or a parameter left unset.
    """
    names = moebench_parameter_names(model)
    if set(names) != set(variables):
        raise ValueError(f"moebench variables differ: missing here {sorted(set(variables) - set(names))}, "
                         f"missing in moebench {sorted(set(names) - set(variables))}")
    with torch.no_grad():
        for name, entry in variables.items():
            parameter, transpose = names[name]
            values = torch.tensor(entry["values"], dtype=parameter.dtype).reshape(entry["shape"])
            if transpose:
                values = values.t()
            if values.shape != parameter.shape:
                raise ValueError(f"{name}: moebench's shape {list(values.shape)} does not fit {list(parameter.shape)}")
            parameter.copy_(values)
        for index, block in enumerate(model.blocks):
            key = f"block{index}.moe.hashTable"
            if key in tables:
                table = tables[key]
                layer = block.feed_forward
                if table["kind"] == "bigram":
                    layer.table_seed = table["seed"]
                else:
                    layer.table = torch.tensor(table["experts"], dtype=torch.long)


def compare_with_moebench(torch, cases):
    """Run each exported moebench case here and return one row of differences per case.

    A case carries the architecture, the config, token ids, moebench's variables and tables, and
    moebench's logits and aux loss from a forward pass in training mode, or in evaluation mode when
    its `training` is false. When it also carries
    `upstream` (same shape as the logits) and `gradients` ({variable name: values}), the gradients of
    sum(logits x upstream) + aux loss are compared too. Its routing must not draw random numbers
    (Switch jitter 0, GShard's `all` policy) for the outputs to be comparable. A row is
    (case summary, max |logit difference|, |aux loss difference|, max |gradient difference| or None,
    dropless loads): the last has one entry per MoE layer of the forward pass, the rows of each expert
    when the layer ran each expert on its own rows, else None (a buffer, and always for BASE).
    """
    rows = []
    for case in cases:
        model = build_model(case["architecture"], torch, case["config"], 0)
        load_moebench_weights(torch, model, case["variables"], case["tables"])
        model.train(case.get("training", True))
        seq = case["config"]["seqLen"]
        tokens = torch.tensor(case["tokens"], dtype=torch.long).view(case["batch"], seq)
        logits, aux_loss, _ = model(tokens)
        expected = torch.tensor(case["logits"]).view_as(logits)
        gradient_difference = None
        if "gradients" in case:
            upstream = torch.tensor(case["upstream"]).view_as(logits)
            ((logits * upstream).sum() + aux_loss).backward()
            gradient_difference = 0.0
            for name, (parameter, transpose) in moebench_parameter_names(model).items():
                gradient = parameter.grad if parameter.grad is not None else torch.zeros_like(parameter)
                if transpose:
                    gradient = gradient.t()
                reference = torch.tensor(case["gradients"][name]).view_as(gradient)
                gradient_difference = max(gradient_difference, float((gradient - reference).abs().max()))
        options = {key: case["config"][key] for key in case["config"] if key in ARCHITECTURES}
        mode = "training" if case.get("training", True) else "evaluation"
        loads = [getattr(block.feed_forward, "dropless_loads", None) for block in model.blocks if not hasattr(block.feed_forward, "input")]
        rows.append((f"{case['architecture']} {mode} {options}", float((logits - expected).abs().max()),
                     abs(float(aux_loss) - case["auxLoss"]), gradient_difference, loads))
    return rows


def check_invariants(torch):
    """Check the slot assignment and the dropless grouping on hand-worked cases, the per-expert path
    against the buffer, and the models' causality; return failure messages.

    Causality: changing the token at position p must change the logits at positions p.. and leave
    those before it alone. Switch (without jitter, which draws per call) and HASH with a capacity
    factor are causal in training, because their slots go to earlier positions first, and HASH without
    one drops nothing and runs each expert on its own rows. GShard and BASE are checked in evaluation,
    because in training a later token can take an earlier token's second-choice slot (GShard) or
    move it in the balanced assignment (BASE), as in moebench.
    """
    failures = []
    # Slots: time-major counting, first choices before second, drops past capacity.
    experts = torch.tensor([[0, 0, 1, 0], [1, 1, 0, -1]])
    order = torch.tensor([0, 2, 1, 3])
    slots, kept = assign_slots(torch, experts, order, 2, 2)
    # Routing order: tokens 0, 2, 1, 3. First choices: expert 0 takes tokens 0 and 1 (slots 0, 1), and
    # token 3 overflows; expert 1 takes token 2 (slot 2 = 1 x C + 0). Second choices then count on
    # from there: token 0 takes expert 1's slot 1 (slot 3), tokens 2 and 1 find their experts full.
    expected_kept = [[True, True, True, False], [True, False, False, False]]
    if kept.tolist() != expected_kept:
        failures.append(f"assign_slots: kept {kept.tolist()}, expected {expected_kept}")
    kept_slots = [[slots[j, s].item() for s in range(4) if kept[j, s]] for j in range(2)]
    if kept_slots != [[0, 1, 2], [3]]:
        failures.append(f"assign_slots: kept slots {kept_slots}, expected [[0, 1, 2], [3]]")

    # Dropless grouping: flattened choices j x S + s of experts [[2, 0, 2, 1], [0, -1, 1, 2]], sorted by
    # expert. Expert 0 takes choices 1 and 4, expert 1 choices 3 and 6, expert 2 choices 0, 2 and 7,
    # expert 3 none, and choice 5 (-1) is no choice.
    experts = torch.tensor([[2, 0, 2, 1], [0, -1, 1, 2]])
    token, choice, counts = group_by_expert(torch, experts, experts >= 0, 4)
    grouped = (token.tolist(), choice.tolist(), counts)
    if grouped != ([1, 0, 3, 2, 0, 2, 3], [1, 4, 3, 6, 0, 2, 7], [2, 2, 3, 0]):
        failures.append(f"group_by_expert: (tokens, choices, counts) {grouped}, expected "
                        "([1, 0, 3, 2, 0, 2, 3], [1, 4, 3, 6, 0, 2, 7], [2, 2, 3, 0])")

    # The per-expert path against the [E, C, d] buffer with C = S, in values and gradients.
    generator = torch.Generator().manual_seed(5)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        bank = define_modules(torch).ExpertBank(4, 5, 7, 1.0, "gelu")
    features = torch.randn(4, 5, generator=generator).requires_grad_()
    gates = torch.rand(4, 2, generator=generator)
    upstream = torch.randn(4, 5, generator=generator)
    per_expert = add_to_tokens(bank.forward_grouped(features.index_select(0, token), counts), gates, token, choice, 4)
    slots, kept = assign_slots(torch, experts, torch.arange(4), 4, 4)
    buffer, buffer_token, slot, buffer_choice = dispatch(features, slots, kept, 16)
    reference = combine(bank(buffer.view(4, 4, 5)).view(16, 5), gates, buffer_token, slot, buffer_choice, 4)
    inputs = [features, bank.w1, bank.b1, bank.w2, bank.b2]
    fast = [per_expert, *torch.autograd.grad((per_expert * upstream).sum(), inputs)]
    slow = [reference, *torch.autograd.grad((reference * upstream).sum(), inputs)]
    for name, value, expected in zip(["output", "features", "w1", "b1", "w2", "b2"], fast, slow):
        difference = float((value - expected).abs().max())
        if difference > 1e-5:
            failures.append(f"per-expert path: {name} differs from the buffer's by {difference:.3g}")

    config = {"vocabSize": 32, "dModel": 16, "layers": 2, "seqLen": 8, "heads": 2, "ffnHidden": 24, "experts": 3}
    for architecture, training, options in (
        ("switch", True, {"switch": {"jitterEps": 0, "capacityFactor": 0.5}}),
        ("hash", True, {"hash": {"capacityFactor": 0.5}}),
        ("hash", True, {}),
        ("gshard", False, {}),
        ("base", False, {}),
    ):
        model = build_model(architecture, torch, {**config, **options}, 0).train(training)
        for trial in range(14):
            position = 1 + trial % 7
            tokens = torch.randint(0, 32, (6, 8), generator=generator)
            changed = tokens.clone()
            changed[:, position] = (changed[:, position] + 1) % 32
            with torch.no_grad():
                before, after = model(tokens)[0], model(changed)[0]
            # A tolerance, because a row's rounding can depend on where it sits in the experts' buffer.
            earlier = float((before[:, :position] - after[:, :position]).abs().max())
            later = float((before[:, position:] - after[:, position:]).abs().max())
            if earlier > 1e-6 or later <= 1e-6:
                failures.append(f"{architecture}: a change at position {position} must change positions {position}.. only")
    return failures


def main(argv):
    parser = argparse.ArgumentParser(description="Build the PyTorch MoE language models and check them against moebench.")
    parser.add_argument("--check", action="store_true",
                        help="build each model of --configs, run forward + backward, print one JSON line per model")
    parser.add_argument("--configs", default="{}",
                        help="JSON object from architecture (switch, gshard, base, hash) to its moebench ModelConfig")
    parser.add_argument("--expect", default="{}", help="JSON object from architecture to moebench's parameter count; a mismatch fails")
    parser.add_argument("--compare", default=None, metavar="FILE",
                        help="JSON list of moebench cases (architecture, config, training, batch, tokens, variables, tables, "
                             "logits, auxLoss, and optionally upstream and gradients); each is run here and must match "
                             "within --tolerance")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed absolute difference of a logit, the aux loss or a gradient for --compare (default 1e-4)")
    parser.add_argument("--batch", type=int, default=16, help="sequences per batch for --check (default 16)")
    parser.add_argument("--steps", type=int, default=3, help="timed forward + backward passes per model after one warm-up (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch intra-op threads (default: PyTorch's own)")
    args = parser.parse_args(argv)
    if not args.check and args.compare is None:
        parser.error("nothing to do: pass --check, --compare FILE or both")
    if args.batch < 1 or args.steps < 1:
        parser.error(f"--batch and --steps must be positive integers, received {args.batch} and {args.steps}")
    configs = json.loads(args.configs)
    expect = json.loads(args.expect)
    for name in [*configs, *expect]:
        if name not in ARCHITECTURES:
            parser.error(f"unknown architecture {name!r}; allowed: {', '.join(ARCHITECTURES)}")

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    failures = check_invariants(torch)
    if args.check:
        for name, config in configs.items():
            result = check_model(torch, name, config, batch=args.batch, steps=args.steps)
            result["threads"] = torch.get_num_threads()
            if name in expect:
                result["expectedParameters"] = expect[name]
                if expect[name] != result["parameters"]:
                    failures.append(f"{name}: {result['parameters']} parameters, moebench has {expect[name]}")
            if not result["finiteGradients"] or not math.isfinite(result["loss"]):
                failures.append(f"{name}: the loss or a gradient is not finite")
            print(json.dumps(result))
    if args.compare is not None:
        with open(args.compare, encoding="utf-8") as file:
            cases = json.load(file)
        for case, logit_difference, aux_difference, gradient_difference, loads in compare_with_moebench(torch, cases):
            print(json.dumps({
                "case": case,
                "maxLogitDifference": logit_difference,
                "auxLossDifference": aux_difference,
                "maxGradientDifference": gradient_difference,
                "droplessLoads": loads,
            }))
            differences = [logit_difference, aux_difference] + ([] if gradient_difference is None else [gradient_difference])
            if not all(difference <= args.tolerance for difference in differences):
                failures.append(f"{case}: differs from moebench by {max(differences):.3g} (logits, aux loss or a gradient)")
    for failure in failures:
        print(f"moe_models.py: check failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
