"""PyTorch peers of moebench's Transformer, gMLP and sMLP language models (packages/models/src).

Each builder follows the contract at the top of peer.py: `build(torch, config, seed)` returns a
module whose `forward(tokens)` maps int64 ids [batch, seqLen] to (logits [batch, seqLen, vocab],
aux_loss, loss_mask or None). The models have moebench's structure, weight shapes, initial scales
and forward math: pre-LN blocks, layer norms with the config's epsilon, GELU in its tanh form, a
final layer norm and an LM head tied to the token embedding. Weights are stored [in, out] as
moebench stores them, so the rank of every parameter (which AdamW's decay rule reads) matches too.

- transformer: learned positions; per block x += Attention(LN(x)), x += FFN(LN(x)); one fused
  d -> 3d projection for q, k and v, scores scaled by 1 / sqrt(d / heads) and masked above the
  diagonal with -1e9. GPT-2 init: normal (truncated at 2 std) with initStd, the two projections
  that write into the residual stream with initStd / sqrt(2 layers).
- gmlp: no position embedding; blocks x += V(SGU(GELU(U(LN(x))))), where the causal spatial gating
  unit splits Z into Z1 and Z2, normalises Z2, mixes it along the sequence with a lower-triangular
  [T, T] matrix plus a bias [T] (initially uniform in +-spatialInitEpsilon / T, and ones), and
  multiplies Z1 by the result.
- smlp: gMLP blocks, with every moeEvery-th block (counting from 1) sparse:
  x += sMoE(LN(x)); x <- tMoE(x). sMoE is a gMLP token mixer whose Z2 is cut into E chunks along
  its channels, each mixed by the [T, T] matrix of its expert: chunk i by expert i (deterministic
  routing, the default), or by a one-to-one map from a router on the sequence's prefix
  (partial prediction, which also returns a loss mask). tMoE is a
  BASE layer: tokens go to experts by a balanced assignment of the affinities x . centroid
  (assignment.py), and y = x + sigmoid(x . centroid_e) FFN_e(LN_e(x)), with per-expert layer norms
  and the experts' output projections initially zero.

The blocks run on time-major rows [seqLen * batch, d], as moebench's gMLP blocks do, so that the
token mixing is one plain matrix product.
"""

import itertools
import math

from assignment import auction, balanced_assignment

ARCHITECTURES = ("transformer", "gmlp", "smlp")

_CONFIG_KEYS = {
    "vocabSize", "dModel", "layers", "seqLen", "heads", "ffnHidden", "experts", "moeEvery", "initStd",
    "layerNormEpsilon", "switch", "gshard", "base", "hash", "gmlp", "smlp",
}
_GMLP_OPTIONS = {"spatialInitEpsilon"}
_SMOE_OPTIONS = {"numExperts", "hiddenSize", "routing", "prefixFraction", "spatialInitEpsilon"}
_TMOE_OPTIONS = {
    "numExperts", "hiddenSize", "sublayers", "auctionEpsilon", "auctionEpsilonScaling", "centroidGain",
    "expertInitScale", "activation",
}


def resolve_config(architecture, config):
    """Returns `config` with moebench's defaults filled in (packages/models/src/config.ts).

    Raises ValueError for an unknown field, a missing required one, or an option this peer does
    not model, naming the field and what is allowed.
    """
    unknown = sorted(set(config) - _CONFIG_KEYS)
    if unknown:
        raise ValueError(f"config: unknown fields {unknown}; allowed: {sorted(_CONFIG_KEYS)}")
    for field in ("vocabSize", "dModel", "layers", "seqLen"):
        if not isinstance(config.get(field), int) or config[field] < 1:
            raise ValueError(f"config.{field} must be a positive integer, received {config.get(field)!r}")
    d = config["dModel"]
    resolved = {
        "heads": 4,
        "ffnHidden": 3 * d if architecture in ("gmlp", "smlp") else 4 * d,
        "experts": 4,
        "moeEvery": 2,
        "initStd": 0.02,
        "layerNormEpsilon": 1e-5,
        "gmlp": {},
        "smlp": {},
    }
    resolved.update(config)
    _check_options("config.gmlp", resolved["gmlp"], _GMLP_OPTIONS)
    smlp = resolved["smlp"]
    _check_options("config.smlp", smlp, {"smoe", "tmoe"})
    _check_options("config.smlp.smoe", smlp.get("smoe", {}), _SMOE_OPTIONS)
    _check_options("config.smlp.tmoe", smlp.get("tmoe", {}), _TMOE_OPTIONS)
    return resolved


def _check_options(label, options, allowed):
    if not isinstance(options, dict):
        raise ValueError(f"{label} must be an options object, received {options!r}")
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"{label}: options {unknown} are not modelled by the PyTorch peer; allowed: {sorted(allowed)}")


_PERMUTATIONS = {}


def assign_chunks(torch, scores, exact_up_to=6):
    """Assigns each sequence's E chunks to its E experts one-to-one, maximising the summed scores.

    scores [B, E, E]: chunk i's score for expert e in sequence b. Returns the expert of each chunk,
    int64 [B * E]. Up to `exact_up_to` experts it takes the best of the E! maps, as moebench's exact
    maxScoreAssignment does; above that one auction (assignment.py) covers every sequence at once.
    """
    batch, experts, _ = scores.shape
    if experts <= exact_up_to:
        if experts not in _PERMUTATIONS:
            _PERMUTATIONS[experts] = torch.tensor(list(itertools.permutations(range(experts))))
        permutations = _PERMUTATIONS[experts]
        totals = scores[:, torch.arange(experts), permutations].sum(dim=2)  # [B, E!]
        return permutations[totals.argmax(dim=1)].reshape(batch * experts)
    rows = batch * experts
    # Chunk row r may only take the experts of its own sequence: -inf elsewhere.
    sequence = torch.arange(rows) // experts
    values = scores.reshape(rows, experts).to(torch.float64)[:, torch.arange(rows) % experts]
    values = values.masked_fill(sequence[:, None] != sequence[None, :], -math.inf)
    return auction(values, torch.ones(rows, dtype=torch.int64)) % experts


def _layers(torch):
    """Defines the modules on first use, so that this file imports without torch."""
    cached = getattr(torch, "_moebench_peer_dense", None)
    if cached is not None:
        return cached
    nn = torch.nn
    functional = torch.nn.functional

    def truncated_normal(shape, std):
        tensor = torch.empty(shape)
        nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2 * std, b=2 * std)
        return nn.Parameter(tensor)

    def gelu(x):
        return functional.gelu(x, approximate="tanh")

    class LayerNorm(nn.Module):
        def __init__(self, width, epsilon):
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(width))
            self.beta = nn.Parameter(torch.zeros(width))
            self.width = width
            self.epsilon = epsilon

        def forward(self, x):
            return functional.layer_norm(x, (self.width,), self.gamma, self.beta, self.epsilon)

    class Linear(nn.Module):
        """y = x W + b with W [in, out], as moebench's `dense`."""

        def __init__(self, inputs, outputs, std):
            super().__init__()
            self.weight = truncated_normal((inputs, outputs), std)
            self.bias = nn.Parameter(torch.zeros(outputs))

        def forward(self, x):
            return torch.addmm(self.bias, x, self.weight)

    class CausalSelfAttention(nn.Module):
        def __init__(self, d, heads, seq_len, std, output_std):
            super().__init__()
            self.qkv = Linear(d, 3 * d, std)
            self.output = Linear(d, d, output_std)
            self.d, self.heads, self.head_width = d, heads, d // heads
            self.register_buffer("mask", torch.triu(torch.full((seq_len, seq_len), -1e9), diagonal=1))

        def forward(self, x, batch, time):
            d, heads, width = self.d, self.heads, self.head_width
            q, k, v = (part.view(batch, time, heads, width).transpose(1, 2) for part in self.qkv(x).split(d, dim=1))
            scores = (q * (1 / math.sqrt(width))) @ k.transpose(-1, -2) + self.mask[:time, :time]
            mixed = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(batch * time, d)
            return self.output(mixed)

    class TransformerBlock(nn.Module):
        def __init__(self, c):
            super().__init__()
            d, std = c["dModel"], c["initStd"]
            residual_std = std / math.sqrt(2 * c["layers"])
            self.attention_norm = LayerNorm(d, c["layerNormEpsilon"])
            self.attention = CausalSelfAttention(d, c["heads"], c["seqLen"], std, residual_std)
            self.ffn_norm = LayerNorm(d, c["layerNormEpsilon"])
            self.ffn_input = Linear(d, c["ffnHidden"], std)
            self.ffn_output = Linear(c["ffnHidden"], d, residual_std)

        def forward(self, x, batch, time):
            x = x + self.attention(self.attention_norm(x), batch, time)
            return x + self.ffn_output(gelu(self.ffn_input(self.ffn_norm(x))))

    class TiedLanguageModel(nn.Module):
        """Token embedding [V, d], the blocks, a final layer norm and logits = LN(h) E^T."""

        def __init__(self, c):
            super().__init__()
            self.vocab, self.d = c["vocabSize"], c["dModel"]
            self.embedding = truncated_normal((self.vocab, self.d), c["initStd"])

        def head(self, hidden, batch, time):
            logits = self.final_norm(hidden) @ self.embedding.t()
            return logits.view(batch, time, self.vocab)

    class Transformer(TiedLanguageModel):
        def __init__(self, c):
            super().__init__(c)
            if self.d % c["heads"] != 0:
                raise ValueError(f"config.heads ({c['heads']}) must divide dModel ({self.d})")
            self.positions = truncated_normal((c["seqLen"], self.d), c["initStd"])
            self.blocks = nn.ModuleList(TransformerBlock(c) for _ in range(c["layers"]))
            self.final_norm = LayerNorm(self.d, c["layerNormEpsilon"])

        def forward(self, tokens):
            batch, time = tokens.shape
            x = (self.embedding[tokens] + self.positions[:time]).view(batch * time, self.d)
            for block in self.blocks:
                x = block(x, batch, time)
            return self.head(x, batch, time), torch.zeros(()), None

    def spatial_weight(experts, seq_len, epsilon):
        """[experts, T, T] uniform in +-epsilon / T on and below the diagonal, zero above."""
        bound = epsilon / seq_len
        values = torch.empty(experts, seq_len, seq_len).uniform_(-bound, bound)
        return values * torch.tril(torch.ones(seq_len, seq_len))

    class GmlpBlock(nn.Module):
        """x + V(SGU(GELU(U(LN(x))))) on time-major rows [T * B, d]."""

        def __init__(self, c):
            super().__init__()
            d, h, t, eps = c["dModel"], c["ffnHidden"], c["seqLen"], c["layerNormEpsilon"]
            self.hidden = h
            self.norm = LayerNorm(d, eps)
            self.u = Linear(d, 2 * h, c["initStd"])
            self.spatial_weight = nn.Parameter(spatial_weight(1, t, c["gmlp"].get("spatialInitEpsilon", 1e-3))[0])
            self.spatial_bias = nn.Parameter(torch.ones(t))
            self.gate_norm = LayerNorm(h, eps)
            self.v = Linear(h, d, c["initStd"])
            self.register_buffer("mask", torch.tril(torch.ones(t, t)))

        def forward(self, x, batch, time):
            h = self.hidden
            z = gelu(self.u(self.norm(x)))
            z1, z2 = z[:, :h], z[:, h:]
            weight = self.spatial_weight[:time, :time] * self.mask[:time, :time]
            mixed = torch.addmm(self.spatial_bias[:time, None], weight, self.gate_norm(z2).reshape(time, batch * h))
            return x + self.v(z1 * mixed.view(time * batch, h))

    class Smoe(nn.Module):
        """sMLP's sparse token mixing: Z2 cut into E chunks, each mixed by the spatial matrix of its expert.

        Deterministic routing sends chunk i to expert i. Partial prediction scores each chunk from
        the first P = max(1, floor(prefixFraction T)) positions (the mean of its channels there,
        times a router [P, E]), assigns each sequence's chunks to experts one-to-one by the summed
        scores, scales a mixed chunk by its softmax probability, and returns a loss mask that is 0
        at the prefix positions.
        """

        def __init__(self, c, options):
            super().__init__()
            d, t, eps = c["dModel"], c["seqLen"], c["layerNormEpsilon"]
            self.routing = options.get("routing", "deterministic")
            if self.routing not in ("deterministic", "partial-prediction"):
                raise ValueError(f"config.smlp.smoe.routing must be deterministic or partial-prediction, received {self.routing!r}")
            self.prefix_fraction = options.get("prefixFraction", 0.2)
            self.experts = options.get("numExperts", c["experts"])
            self.hidden = options.get("hiddenSize", c["ffnHidden"])
            if self.hidden % self.experts != 0:
                raise ValueError(f"sMoE hidden width {self.hidden} must be a multiple of its {self.experts} experts")
            self.chunk = self.hidden // self.experts
            self.u = Linear(d, 2 * self.hidden, c["initStd"])
            self.gate_norm = LayerNorm(self.hidden, eps)
            self.spatial_weights = nn.Parameter(spatial_weight(self.experts, t, options.get("spatialInitEpsilon", 1e-3)))
            self.spatial_biases = nn.Parameter(torch.ones(self.experts, t))
            self.v = Linear(self.hidden, d, c["initStd"])
            if self.routing == "partial-prediction":
                self.router = truncated_normal((self.prefix_length(t), self.experts), c["initStd"])
            self.register_buffer("mask", torch.tril(torch.ones(t, t)))

        def prefix_length(self, time):
            return max(1, math.floor(self.prefix_fraction * time))

        def forward(self, x, batch, time):
            h, experts, chunk = self.hidden, self.experts, self.chunk
            z = gelu(self.u(x))
            z1, z2 = z[:, :h], z[:, h:]
            # [T, B * E, h / E]: one column block per (sequence, chunk)
            chunks = self.gate_norm(z2).view(time, batch * experts, chunk)
            plan = self.route(chunks, batch, time) if self.routing == "partial-prediction" else None
            if plan is not None:
                chunks = chunks[:, plan["source"]]
            # [E, T, B * h / E]: expert e's chunk of every sequence, time-major
            by_expert = chunks.view(time, batch, experts, chunk).permute(2, 0, 1, 3).reshape(experts, time, batch * chunk)
            weights = self.spatial_weights[:, :time, :time] * self.mask[:time, :time]
            mixed = torch.baddbmm(self.spatial_biases[:, :time, None], weights, by_expert)
            mixed = mixed.view(experts, time, batch, chunk).permute(1, 2, 0, 3).reshape(time, batch * experts, chunk)
            loss_mask = None
            if plan is not None:
                mixed = mixed[:, plan["target"]] * plan["gates"][None, :, None]
                loss_mask = torch.ones(batch, time)
                loss_mask[:, : self.prefix_length(time)] = 0
            return self.v(z1 * mixed.reshape(time * batch, h)), loss_mask

        def route(self, chunks, batch, time):
            """Assigns each sequence's chunks to experts one-to-one; returns the gather indices and gates."""
            experts, rows = self.experts, chunks.shape[1]
            prefix = self.prefix_length(time)
            if prefix >= time:
                raise ValueError(f"sMoE partial prediction leaves no position with loss in a sequence of {time} tokens")
            logits = chunks[:prefix].mean(dim=2).t() @ self.router[:prefix]  # [B * E, E]
            probs = torch.softmax(logits, dim=1)
            expert = assign_chunks(torch, logits.detach().view(batch, experts, experts))
            slot = (torch.arange(rows) // experts) * experts + expert  # row b * E + e is expert e of sequence b
            source = torch.empty_like(slot)
            source[slot] = torch.arange(rows)
            gates = probs.gather(1, expert[:, None]).squeeze(1)
            return {"source": source, "target": slot, "gates": gates}

    class BaseLayer(nn.Module):
        """The BASE layer: balanced assignment in training, y = x + sigmoid(x . w_e) FFN_e(LN_e(x))."""

        def __init__(self, d, options, epsilon, default_experts, default_hidden):
            super().__init__()
            self.d = d
            self.experts = options.get("numExperts", default_experts)
            hidden = options.get("hiddenSize", default_hidden)
            self.sublayers = options.get("sublayers", 1)
            self.auction_epsilon = options.get("auctionEpsilon", 1e-4)
            self.auction_scaling = options.get("auctionEpsilonScaling", 8.0)
            self.activation = options.get("activation", "gelu")
            if self.activation not in ("gelu", "relu"):
                raise ValueError(f"tmoe.activation must be gelu or relu, received {self.activation!r}")
            self.epsilon = epsilon
            gain = options.get("centroidGain", 0.1)
            scale = options.get("expertInitScale", 1.0)
            centroids = torch.empty(self.experts, d)
            nn.init.orthogonal_(centroids, gain=gain)
            self.centroids = nn.Parameter(centroids)
            self.norm_scales = nn.ParameterList(nn.Parameter(torch.ones(self.experts, d)) for _ in range(self.sublayers))
            self.norm_biases = nn.ParameterList(nn.Parameter(torch.zeros(self.experts, d)) for _ in range(self.sublayers))
            self.w1 = nn.ParameterList(truncated_normal((self.experts, d, hidden), math.sqrt(scale / d)) for _ in range(self.sublayers))
            self.b1 = nn.ParameterList(nn.Parameter(torch.zeros(self.experts, hidden)) for _ in range(self.sublayers))
            self.w2 = nn.ParameterList(nn.Parameter(torch.zeros(self.experts, hidden, d)) for _ in range(self.sublayers))
            self.b2 = nn.ParameterList(nn.Parameter(torch.zeros(self.experts, d)) for _ in range(self.sublayers))

        def forward(self, x):
            tokens, d, experts = x.shape[0], self.d, self.experts
            affinities = x @ self.centroids.t()  # [S, E]
            expert = balanced_assignment(affinities, self.auction_epsilon, self.auction_scaling)
            gate = torch.sigmoid(affinities.gather(1, expert[:, None]))  # [S, 1]
            capacity = -(-tokens // experts)
            order = torch.argsort(expert, stable=True)
            counts = torch.bincount(expert, minlength=experts)
            slot = torch.empty_like(expert)
            slot[order] = torch.arange(tokens) - (torch.cumsum(counts, 0) - counts)[expert[order]]
            position = expert * capacity + slot
            if tokens == experts * capacity:
                hidden = x[order].view(experts, capacity, d)
            else:
                hidden = x.new_zeros(experts * capacity, d).index_copy(0, position, x).view(experts, capacity, d)
            update = None
            for i in range(self.sublayers):
                normalised = functional.layer_norm(hidden, (d,), None, None, self.epsilon) * self.norm_scales[i][:, None] + self.norm_biases[i][:, None]
                inner = torch.baddbmm(self.b1[i][:, None], normalised, self.w1[i])
                inner = gelu(inner) if self.activation == "gelu" else torch.relu(inner)
                out = torch.baddbmm(self.b2[i][:, None], inner, self.w2[i])
                update = out if update is None else update + out
                if self.sublayers > 1:
                    hidden = hidden + out
            return x + gate * update.reshape(experts * capacity, d)[position]

    class SparseBlock(nn.Module):
        """x + sMoE(LN(x)), then the tMoE BASE layer, which carries its own residual."""

        def __init__(self, c):
            super().__init__()
            smlp = c["smlp"]
            self.norm = LayerNorm(c["dModel"], c["layerNormEpsilon"])
            self.smoe = Smoe(c, smlp.get("smoe", {}))
            self.tmoe = BaseLayer(c["dModel"], smlp.get("tmoe", {}), c["layerNormEpsilon"], c["experts"], c["ffnHidden"])

        def forward(self, x, batch, time):
            update, loss_mask = self.smoe(self.norm(x), batch, time)
            return self.tmoe(x + update), loss_mask

    class MlpLanguageModel(TiedLanguageModel):
        """gMLP (every block dense) or sMLP (every moeEvery-th block sparse), time-major inside."""

        def __init__(self, c, sparse):
            super().__init__(c)
            every = c["moeEvery"]
            if sparse and every > c["layers"]:
                raise ValueError(f"config.moeEvery ({every}) must be at most layers ({c['layers']}) so that sMLP has a sparse block")
            self.blocks = nn.ModuleList(
                SparseBlock(c) if sparse and (i + 1) % every == 0 else GmlpBlock(c) for i in range(c["layers"])
            )
            self.final_norm = LayerNorm(self.d, c["layerNormEpsilon"])

        def forward(self, tokens):
            batch, time = tokens.shape
            x = self.embedding[tokens.t()].reshape(time * batch, self.d)
            loss_mask = None
            for block in self.blocks:
                if isinstance(block, SparseBlock):
                    x, mask = block(x, batch, time)
                    if mask is not None:
                        loss_mask = mask if loss_mask is None else loss_mask * mask
                else:
                    x = block(x, batch, time)
            hidden = x.view(time, batch, self.d).transpose(0, 1).reshape(batch * time, self.d)
            return self.head(hidden, batch, time), torch.zeros(()), loss_mask

    namespace = type("DenseLayers", (), {})()
    namespace.Transformer = Transformer
    namespace.MlpLanguageModel = MlpLanguageModel
    namespace.BaseLayer = BaseLayer
    torch._moebench_peer_dense = namespace
    return namespace


def build_transformer(torch, config, seed):
    """Build the dense pre-LN Transformer LM of packages/models/src/transformer.ts."""
    torch.manual_seed(seed)
    return _layers(torch).Transformer(resolve_config("transformer", config))


def build_gmlp(torch, config, seed):
    """Build the gMLP LM of packages/models/src/gmlp.ts."""
    torch.manual_seed(seed)
    return _layers(torch).MlpLanguageModel(resolve_config("gmlp", config), sparse=False)


def build_smlp(torch, config, seed):
    """Build the sMLP LM of packages/models/src/smlp.ts."""
    torch.manual_seed(seed)
    return _layers(torch).MlpLanguageModel(resolve_config("smlp", config), sparse=True)


BUILDERS = {"transformer": build_transformer, "gmlp": build_gmlp, "smlp": build_smlp}
