export { resolveSwitchOptions, type ResolvedSwitchOptions, type SwitchOptions } from './options.js';
export { jitterNoise, switchRoute, type SwitchRouteOptions } from './route.js';
export { createSwitchLayer, SwitchLayer, SwitchRouter } from './layer.js';
