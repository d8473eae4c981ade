import { describe, expect, it } from 'vitest';
import { accountModel, ARCHITECTURES, matchCompute, resolveConfig, type ModelConfig } from '../src/index.js';

const BASE: ModelConfig = { vocabSize: 256, dModel: 128, layers: 4, seqLen: 128, heads: 4, experts: 4 };

describe('matchCompute', () => {
  const target = accountModel('transformer', resolveConfig('transformer', BASE)).forwardFlopsPerToken;

  it.each(['both', 'dModel', 'hidden'] as const)('lands every architecture within 5 percent (vary %s)', (vary) => {
    const matches = matchCompute(target, BASE, { vary });
    for (const architecture of ARCHITECTURES) {
      const match = matches[architecture];
      const recomputed = accountModel(architecture, resolveConfig(architecture, match.config)).forwardFlopsPerToken;
      expect(recomputed, architecture).toBe(match.accounting.forwardFlopsPerToken);
      expect(Math.abs(recomputed - target) / target, architecture).toBeLessThanOrEqual(0.05);
      expect(match.relativeError).toBeCloseTo((recomputed - target) / target, 12);
      if (vary === 'hidden') expect(match.config.dModel).toBe(BASE.dModel);
    }
  });

  it('returns the base widths when they already match', () => {
    const { transformer } = matchCompute(target, BASE, { architectures: ['transformer'] });
    expect(transformer.config.dModel).toBe(128);
    expect(transformer.config.ffnHidden).toBe(512);
    expect(transformer.relativeError).toBe(0);
  });

  it('keeps dModel a multiple of heads and of dModelMultiple', () => {
    const matches = matchCompute(target * 1.7, { ...BASE, heads: 6 }, { dModelMultiple: 16 });
    expect(matches.transformer.config.dModel % 48).toBe(0);
    expect(matches.gmlp.config.dModel % 16).toBe(0);
    expect((matches.smlp.config.ffnHidden as number) % 4).toBe(0);
  });

  it('rounds the sMLP width to its sMoE experts', () => {
    const { smlp } = matchCompute(target, { ...BASE, smlp: { smoe: { numExperts: 6 } } }, { architectures: ['smlp'] });
    expect((smlp.config.ffnHidden as number) % 6).toBe(0);
    expect(Math.abs(smlp.relativeError)).toBeLessThanOrEqual(0.05);
  });

  it.each([
    ['experts', { ...BASE, experts: 16 }, 16],
    ['smlp.smoe.numExperts', { ...BASE, smlp: { smoe: { numExperts: 5 } } }, 5],
  ] as const)('sizes sMLP when %s does not divide 3 x dModelMultiple', (_field, base, experts) => {
    const { smlp } = matchCompute(target, base, { architectures: ['smlp'] });
    expect((smlp.config.ffnHidden as number) % experts).toBe(0);
    expect(Math.abs(smlp.relativeError)).toBeLessThanOrEqual(0.05);
  });

  it('rejects a target below the cost of the LM head', () => {
    expect(() => matchCompute(1000, BASE, { architectures: ['transformer'] })).toThrow(/no transformer width .* within 5% of 1000 forward FLOPs/);
  });

  it('rejects invalid options', () => {
    expect(() => matchCompute(-1, BASE)).toThrow('targetForwardFlopsPerToken must be a finite number above 0, received -1');
    expect(() => matchCompute(target, BASE, { vary: 'depth' as never })).toThrow('vary must be one of both, dModel, hidden, received "depth"');
    expect(() => matchCompute(target, BASE, { tolerance: 0 })).toThrow('tolerance must be a number in (0, 1), received 0');
    expect(() => matchCompute(target, BASE, { architectures: ['lstm'] })).toThrow('Unknown architecture "lstm"');
  });
});
