export type { MoeLayer, MoeOutput, Router, RouterContext, RoutingPlan, RoutingStats } from './types.js';
