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
