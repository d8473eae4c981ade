export {
  DEFAULT_EPSILON_SCALING,
  DEFAULT_RELATIVE_EPSILON,
  balancedAssignment,
  greedyAssignment,
  slotsInTokenOrder,
  type AuctionOptions,
  type BalancedAssignment,
} from './auction.js';
