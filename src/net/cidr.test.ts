import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../config';
import { cidrProblem, parseCidr } from './cidr';

describe('parseCidr / cidrProblem', () => {
  it('CIDR entries must be canonical ranges', () => {
    expect(cidrProblem('10.0.0.0/8')).toBeUndefined();
    expect(cidrProblem('::1/128')).toBeUndefined();
    for (const bad of [
      'fe80::%eth0/64',
      '10.0.0.0',
      '10.0.0.0/33',
      '010.0.0.0/8',
      '10.0.0.0/08x',
      '127.1/32',
      'fd00::/129',
      'x/8',
      '/8',
    ])
      expect(cidrProblem(bad), bad).toMatch(/is not a CIDR range/);
  });

  it('an IPv4-mapped range means its IPv4 range', () => {
    expect(parseCidr('::ffff:10.0.0.0/104').toString()).toBe('10.0.0.0,8');
    expect(parseCidr('::10.0.0.0/104').toString()).toBe('::a00:0,104');
  });
});

describe('config: OUTBOUND_ALLOW and OUTBOUND_DENY', () => {
  const base = {
    DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/sluice',
    REDIS_URL: 'redis://127.0.0.1:6379/0',
    ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
  };

  it('development and test allow loopback by default; production allows nothing extra', () => {
    for (const NODE_ENV of ['development', 'test'])
      expect(loadConfig({ ...base, NODE_ENV })).toMatchObject({
        outboundAllow: ['127.0.0.0/8', '::1/128'],
        outboundDeny: [],
      });
    expect(loadConfig({ ...base, NODE_ENV: 'production' })).toMatchObject({
      outboundAllow: [],
      outboundDeny: [],
    });
  });

  it('a value given replaces the default, even an empty one', () => {
    expect(
      loadConfig({
        ...base,
        NODE_ENV: 'test',
        OUTBOUND_ALLOW: ' 127.0.0.2/32, 10.0.0.0/8 ',
        OUTBOUND_DENY: '10.9.0.0/16',
      }),
    ).toMatchObject({ outboundAllow: ['127.0.0.2/32', '10.0.0.0/8'], outboundDeny: ['10.9.0.0/16'] });
    expect(loadConfig({ ...base, OUTBOUND_ALLOW: '' }).outboundAllow).toEqual([]);
  });

  it('lists every bad entry', () => {
    let problems: string[] = [];
    try {
      loadConfig({
        ...base,
        OUTBOUND_ALLOW: '10.0.0.0,127.0.0.0/8',
        OUTBOUND_DENY: '0x0a000000/8,fd00::/200',
      });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems;
    }
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^OUTBOUND_ALLOW: "10\.0\.0\.0" is not a CIDR range/);
    expect(problems[1]).toMatch(/^OUTBOUND_DENY: "0x0a000000\/8"/);
    expect(problems[2]).toMatch(/^OUTBOUND_DENY: "fd00::\/200"/);
  });
});
