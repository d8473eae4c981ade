"""Balanced assignment of tokens to experts in vectorised PyTorch, for the BASE layers of the peer models.

`balanced_assignment(affinities)` gives every expert ceil(S / E) slots, leaves at most one slot per
expert empty when E does not divide S, and maximises the total affinity to within
S x relative_epsilon x spread, as packages/base-layers/src/auction.ts does. It runs an auction of
tokens for classes of identical slots, in the Jacobi form: every unassigned token bids at once, and
each class keeps its highest bids. The Python loops are over bidding rounds and classes, never over
tokens. Instead of moebench's epsilon scaling, the prices start from a few passes of coordinate
descent on the dual. Each pass sets one class's price at a time so that exactly its capacity of
tokens prefer it, and one auction at the final epsilon finishes from there. Both reach the same
precision. At 1024 tokens and 4 experts the warm start took 16 bidding rounds and epsilon scaling
1035 (0.9 ms against 153 ms, torch 1.13, one measurement).
`auction(values, capacities)` is the general form, with -inf marking the classes a bidder may not take.

The BASE LM of moe_models.py and sMLP's tMoE in dense_models.py both call `balanced_assignment`.
"""

import math
import warnings

# torch 1.13 calls scatter_reduce a beta API and warns on first use; the call below is its stable form.
warnings.filterwarnings("ignore", message="scatter_reduce\\(\\) is in beta")

DEFAULT_RELATIVE_EPSILON = 1e-4
DEFAULT_EPSILON_SCALING = 8.0


def balanced_assignment(affinities, relative_epsilon=DEFAULT_RELATIVE_EPSILON, epsilon_scaling=DEFAULT_EPSILON_SCALING, sweeps=3):
    """Returns the expert of each token, int64 [S], for affinities [S, E] (finite, S >= E).

    Every expert receives ceil(S / E) tokens, or one fewer when E does not divide S. The total
    affinity is within S x relative_epsilon x (max - min of the affinities) of the optimum. No
    gradient flows through the choice; callers gate with the chosen affinities themselves.
    `sweeps` is the number of warm-start passes (see `auction`).
    """
    import torch

    if affinities.dim() != 2:
        raise ValueError(f"balanced_assignment: affinities must be [tokens, experts], received shape {list(affinities.shape)}")
    tokens, experts = affinities.shape
    if experts < 1 or tokens < experts:
        raise ValueError(f"balanced_assignment: needs 1 <= experts <= tokens, received {tokens} tokens and {experts} experts")
    with torch.no_grad():
        scores = affinities.detach().to(torch.float64)
        if not bool(torch.isfinite(scores).all()):
            raise ValueError("balanced_assignment: every affinity must be finite")
        capacity = -(-tokens // experts)
        padding = capacity * experts - tokens
        expert_ids = torch.arange(experts)
        if padding == 0:
            class_expert = expert_ids
            capacities = torch.full((experts,), capacity, dtype=torch.int64)
            values = scores
        else:
            # Each expert's slots split into capacity - 1 regular slots and one last slot. The padding
            # tokens (affinity 0) may only take a last slot, so no expert ends two tokens short.
            regular = capacity > 1
            class_expert = torch.cat([expert_ids, expert_ids]) if regular else expert_ids
            capacities = torch.cat([
                torch.full((experts,), capacity - 1, dtype=torch.int64) if regular else torch.empty(0, dtype=torch.int64),
                torch.ones(experts, dtype=torch.int64),
            ])
            real = scores[:, class_expert]
            lowest = float(scores.min())
            pad = torch.full((padding, class_expert.numel()), -math.inf, dtype=torch.float64)
            pad[:, -experts:] = lowest
            values = torch.cat([real, pad])
        owner = auction(values, capacities, relative_epsilon, epsilon_scaling, sweeps)
        return class_expert[owner[:tokens]]


def auction(values, capacities, relative_epsilon=DEFAULT_RELATIVE_EPSILON, epsilon_scaling=DEFAULT_EPSILON_SCALING, sweeps=3):
    """Assigns N bidders to K classes of identical slots, class k holding capacities[k] of them.

    values [N, K] float64: a bidder's value for a class, -inf where it may not bid; capacities [K]
    int64 summing to N. Returns the class of each bidder, int64 [N], with the summed value within
    N x epsilon of the optimum, epsilon = relative_epsilon x the spread of the finite values. With
    sweeps > 0 (default 3) the prices start from `warm_start_prices` and one auction runs at that
    epsilon; with 0 they start at zero and epsilon shrinks by epsilon_scaling from spread / epsilon_scaling.
    """
    import torch

    bidders, classes = values.shape
    if int(capacities.sum()) != bidders:
        raise ValueError(f"auction: capacities must sum to the {bidders} bidders, received {int(capacities.sum())}")
    if not (epsilon_scaling > 1):
        raise ValueError(f"auction: epsilon_scaling must be greater than 1, received {epsilon_scaling}")
    if not (relative_epsilon > 0):
        raise ValueError(f"auction: relative_epsilon must be greater than 0, received {relative_epsilon}")
    finite = values[torch.isfinite(values)]
    spread = float(finite.max() - finite.min()) if finite.numel() > 0 else 0.0
    final_epsilon = relative_epsilon * spread if spread > 0 else 1e-6

    owner = torch.full((bidders,), -1, dtype=torch.int64)
    held = torch.zeros(bidders, dtype=torch.float64)  # the bid each holder paid
    floor = warm_start_prices(values, capacities, sweeps)  # the price of a class's free slots
    rows = torch.arange(bidders)

    def class_prices():
        assigned = owner >= 0
        counts = torch.bincount(owner[assigned], minlength=classes)
        lowest_held = torch.full((classes,), math.inf, dtype=torch.float64)
        lowest_held.scatter_reduce_(0, owner[assigned], held[assigned], reduce="amin")
        return torch.where(counts >= capacities, lowest_held, floor), counts

    epsilon = final_epsilon if sweeps > 0 else max(final_epsilon, spread / epsilon_scaling)
    while True:
        # A new round: every slot of a class takes the class price, and holders that are no longer
        # within epsilon of their best class give their slot back.
        price, _ = class_prices()
        floor = price.clone()
        assigned = owner >= 0
        held = torch.where(assigned, price[owner.clamp(min=0)], held)
        if bool(assigned.any()):
            net = values - price
            own_class = owner.clamp(min=0).unsqueeze(1)
            own = net.gather(1, own_class).squeeze(1)
            other = net.scatter(1, own_class, -math.inf).max(dim=1).values
            owner[assigned & (own < other - epsilon)] = -1

        while True:
            waiting = rows[owner < 0]
            if waiting.numel() == 0:
                break
            price, _ = class_prices()
            net = values[waiting] - price
            if classes > 1:
                top = net.topk(2, dim=1)
                best_value, second_value = top.values[:, 0], top.values[:, 1]
                best_class = top.indices[:, 0]
                margin = torch.where(torch.isfinite(second_value), best_value - second_value, torch.zeros_like(best_value))
            else:
                best_class = torch.zeros(waiting.numel(), dtype=torch.int64)
                margin = torch.zeros(waiting.numel(), dtype=torch.float64)
            owner[waiting] = best_class
            held[waiting] = price[best_class] + margin + epsilon

            counts = torch.bincount(owner[owner >= 0], minlength=classes)
            if bool((counts > capacities).any()):
                # Each overfull class keeps its highest bids: order holders by class, then bid
                # descending, and free those ranked at or past the class's capacity.
                holders = rows[owner >= 0]
                by_bid = holders[torch.argsort(held[holders], descending=True, stable=True)]
                ordered = by_bid[torch.argsort(owner[by_bid], stable=True)]
                ordered_class = owner[ordered]
                starts = torch.cumsum(counts, 0) - counts
                rank = torch.arange(ordered.numel()) - starts[ordered_class]
                owner[ordered[rank >= capacities[ordered_class]]] = -1
        if epsilon <= final_epsilon:
            return owner
        epsilon = max(final_epsilon, epsilon / epsilon_scaling)


def warm_start_prices(values, capacities, sweeps):
    """Class prices from `sweeps` passes of coordinate descent on the dual, zeros for 0 sweeps.

    Each step sets one class's price so that, at the other classes' prices, exactly its capacity
    of bidders prefer it. The auction then starts from prices close to the final ones, so its
    bidding chains are short.
    """
    import torch

    bidders, classes = values.shape
    price = torch.zeros(classes, dtype=torch.float64)
    for _ in range(sweeps):
        for k in range(classes):
            net = values - price
            net[:, k] = -math.inf
            alternative = net.max(dim=1).values
            own = values[:, k]
            gain = torch.where(torch.isfinite(alternative), own - alternative, torch.full_like(own, math.inf))
            gain = torch.where(torch.isfinite(own), gain, torch.full_like(own, -math.inf))
            count = int(capacities[k])
            if count == 0 or count >= bidders:
                continue
            top = gain.topk(count + 1).values
            if bool(torch.isfinite(top[-2:]).all()):
                price[k] = 0.5 * (top[-2] + top[-1])
    return price
