import { describe, expect, it } from 'vitest';
import { displayName, provenanceLines, summariseVersions } from '../src/index.js';

describe('summariseVersions', () => {
  it('collapses moebench packages of one version', () => {
    const versions = { node: '20.20.2', '@tensorflow/tfjs-core': '4.22.0', moebench: '0.1.0', '@moebench/report': '0.1.0', '@moebench/smlp': '0.1.0' };
    expect(summariseVersions(versions)).toBe('node 20.20.2, tfjs-core 4.22.0, moebench 0.1.0');
  });

  it('lists moebench packages whose versions differ', () => {
    expect(summariseVersions({ '@moebench/report': '0.1.0', '@moebench/smlp': '0.2.0' })).toBe('@moebench/report 0.1.0, @moebench/smlp 0.2.0');
  });
});

describe('provenanceLines', () => {
  it('gives run, hardware, version and commit lines', () => {
    const lines = provenanceLines({
      runId: 'quick-1',
      corpus: 'sotu, byte tokenizer',
      backend: 'wasm',
      hardware: 'CPU (2 cores)',
      versions: {},
      gitSha: '0123456789abcdef',
      gitDirty: true,
      date: '2026-12-04T20:00:00Z',
    });
    expect(lines).toEqual(['run quick-1 · corpus sotu, byte tokenizer', 'wasm on CPU (2 cores)', 'versions not recorded', 'git 0123456789ab (dirty) · 2026-12-04']);
  });
});

describe('displayName', () => {
  it('uses published names and keeps others', () => {
    expect(displayName('base')).toBe('BASE Layers');
    expect(displayName('smlp-e8')).toBe('smlp-e8');
  });
});
