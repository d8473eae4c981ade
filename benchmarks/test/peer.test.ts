import { describe, expect, it } from 'vitest';
import { parseArgs } from '../src/args.js';
import { formatPeerTable, runPeerBenchmark, type PeerReport } from '../src/cases/peer.js';

describe('pnpm bench --peer arguments', () => {
  it('defaults to the wasm kernel sets without cpu', () => {
    expect(parseArgs(['--peer'])).toEqual({
      filters: [],
      variants: ['wasm-native', 'wasm', 'wasm-stock'],
      peer: true,
      list: false,
      help: false,
    });
  });

  it('takes peer variants, a name and an output file', () => {
    const args = parseArgs(['--peer', '--variants', 'wasm-native,cpu', '--name', 'p1', '--out', 'peer.json']);
    expect(args.variants).toEqual(['wasm-native', 'cpu']);
    expect(args.name).toBe('p1');
    expect(args.out).toBe('peer.json');
  });

  it('rejects variants and flags the peer comparison does not take', () => {
    expect(() => parseArgs(['--variants', 'tensorflow', '--peer'])).toThrow(
      '--variants with --peer: unknown variant "tensorflow". Allowed: wasm-native, wasm, wasm-stock, cpu',
    );
    expect(() => parseArgs(['--peer', '--filter', 'dense'])).toThrow('--filter does not apply to --peer');
    expect(() => parseArgs(['--peer', '--list'])).toThrow('--list and --peer exclude each other');
  });
});

describe('peer table', () => {
  const report: PeerReport = {
    startedAt: '2026-12-04T21:00:00.000Z',
    pytorch: { torch: '1.13.0', threads: 2, blas: 'openblas', ompWaitPolicy: 'PASSIVE' },
    backends: {},
    rows: [
      { case: 'switch-layer', variant: 'wasm', status: 'measured', steps: 4, meanMs: 250, tokensPerSecond: 8192, gflops: 12.5, ratioToPytorch: 0.25 },
      { case: 'dense-ffn', variant: 'wasm-native', status: 'measured', steps: 40, meanMs: 50, tokensPerSecond: 40960, gflops: 64.42, ratioToPytorch: 1.25 },
      { case: 'dense-ffn', variant: 'pytorch', status: 'measured', steps: 30, meanMs: 62.5, tokensPerSecond: 32768, gflops: 51.54 },
      { case: 'switch-layer', variant: 'pytorch', status: 'measured', steps: 20, meanMs: 62.5, tokensPerSecond: 32768, gflops: 50 },
      { case: 'dense-ffn', variant: 'wasm-stock', status: 'skipped', reason: 'native kernels are not available: addon not built' },
    ],
  };

  it('orders rows by case, PyTorch first, and prints tokens/s, GFLOP/s and the ratio', () => {
    const lines = formatPeerTable(report).split('\n');
    expect(lines[0]).toMatch(/^case\s+variant\s+steps\s+ms\/step\s+tokens\/s\s+GFLOP\/s\s+vs PyTorch$/);
    expect(lines[1]).toMatch(/^-+ +-+ +-+/);
    expect(lines[2]).toMatch(/^dense-ffn\s+pytorch\s+30\s+62\.5\s+32,768\s+51\.54$/);
    expect(lines[3]).toMatch(/^dense-ffn\s+wasm-native\s+40\s+50\.0\s+40,960\s+64\.42\s+1\.25x$/);
    expect(lines[4]).toMatch(/^dense-ffn\s+wasm-stock\s+skipped$/);
    expect(lines[5]).toMatch(/^switch-layer\s+pytorch\s+20\s+62\.5\s+32,768\s+50\.00$/);
    expect(lines[6]).toMatch(/^switch-layer\s+wasm\s+4\s+250\.0\s+8,192\s+12\.50\s+0\.25x$/);
  });

  it('lists the skip reasons and PyTorch facts under the table', () => {
    const table = formatPeerTable(report);
    expect(table).toContain('not measured:\n  wasm-stock: native kernels are not available: addon not built');
    expect(table).toContain('  pytorch: torch 1.13.0, 2 threads, BLAS openblas, OMP_WAIT_POLICY=PASSIVE');
  });
});

describe('a missing PyTorch', () => {
  it('becomes one skipped row per case with a one-line reason', async () => {
    const report = await runPeerBenchmark({ python: '/nonexistent/python3', variants: [], log: () => {} });
    expect(report.rows.map((row) => [row.case, row.variant, row.status])).toEqual([
      ['dense-ffn', 'pytorch', 'skipped'],
      ['switch-layer', 'pytorch', 'skipped'],
      ['train-step-transformer', 'pytorch', 'skipped'],
    ]);
    expect(report.pytorch.skipped).toMatch(/^\/nonexistent\/python3 did not start \(.*ENOENT.*\)$/);
    expect(report.pytorch.skipped).not.toContain('\n');
    expect(formatPeerTable(report)).toContain('  pytorch: skipped');
  });
});
