export * from './types.js';
export * from './statistics.js';
export * from './time-to-target.js';
export * from './claim.js';
export * from './routing-health.js';
export * from './analysis.js';
