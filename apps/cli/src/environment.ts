import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeBackend, type BackendDescription } from '@moebench/backend';

/** Facts about the machine and software a run used; stored in the run manifest and printed by `moebench env`. */
export interface EnvironmentFacts {
  /** The active backend and the host, as `describeBackend` reports them. */
  backend: BackendDescription;
  /** Versions by name: node, tfjs-core, and the moebench packages. */
  versions: Record<string, string>;
  /** Git commit of the moebench checkout, or null outside a git checkout. */
  gitSha: string | null;
  /** Whether tracked files had uncommitted changes, or null outside a git checkout. */
  gitDirty: boolean | null;
}

const REPOSITORY_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = ['backend', 'moe', 'gshard', 'switch', 'base-layers', 'hash-layers', 'smlp', 'models', 'data', 'train', 'results', 'report'];

/** Collects the environment facts of this process; call it after `initBackend`. */
export async function collectEnvironment(): Promise<EnvironmentFacts> {
  const backend = await describeBackend();
  const versions: Record<string, string> = { node: process.versions.node, '@tensorflow/tfjs-core': backend.tfjsVersion };
  if (backend.wasm) versions['@tensorflow/tfjs-backend-wasm'] = backend.wasm.version;
  if (backend.native) versions[backend.native.package] = backend.native.version;
  versions.moebench = readVersion(new URL('../package.json', import.meta.url));
  for (const name of PACKAGES) {
    versions[`@moebench/${name}`] = readVersion(new URL(`../../../packages/${name}/package.json`, import.meta.url));
  }
  return { backend, versions, ...gitState() };
}

/**
 * Describes the kernel setup a backend description records, in the terms of the switches that
 * choose it, for example `native kernels on 2 threads, fused kernels on`. Two runs whose setups
 * differ do not time the same kernels. Backends other than wasm have no kernel switches: their
 * setup is their name.
 */
export function kernelSetup(backend: Record<string, unknown>): string {
  const name = typeof backend.backend === 'string' ? backend.backend : 'unknown';
  const wasm = backend.wasm as Record<string, unknown> | undefined;
  if (name !== 'wasm' || wasm === undefined) return `${name} backend`;
  if (wasm.replacementKernels !== true) return 'stock wasm kernels';
  const native = (wasm.nativeKernels ?? {}) as Record<string, unknown>;
  if (native.active !== true) return 'moebench wasm kernels, native kernels off';
  const threads = typeof native.threads === 'number' ? native.threads : 'unknown';
  return `native kernels on ${threads} thread(s), fused kernels ${native.fusedActive === false ? 'off' : 'on'}`;
}

function readVersion(url: URL): string {
  try {
    return (JSON.parse(readFileSync(url, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function gitState(): { gitSha: string | null; gitDirty: boolean | null } {
  const git = (args: string[]): string => execFileSync('git', ['-C', REPOSITORY_ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const gitSha = git(['rev-parse', 'HEAD']).trim();
    const gitDirty = git(['status', '--porcelain', '--untracked-files=no']).trim() !== '';
    return { gitSha, gitDirty };
  } catch {
    return { gitSha: null, gitDirty: null };
  }
}
