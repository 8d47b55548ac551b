import { expect } from 'chai';
import {
  applyCapabilities,
  CAPABILITY_SUPPORT,
  checkCapabilities,
  DEFAULT_CAPABILITIES,
  MIGRATE_SET_CAPABILITIES_ARGS,
  MIGRATION_CAPABILITIES,
  parseCapFlag,
  queryCapabilities,
  type CapabilityCheckContext,
  type MigrationCapabilities,
  type MigrationCapability,
  type SetCapabilitiesContext,
} from '../actors/options/capabilities.js';
import { StartupFlagError } from '../actors/options/startup-flag.js';
import { QmpError } from '../protocols/qmp/errors.js';
import { validateArguments } from '../protocols/qmp/validate-arguments.js';

const ctx: CapabilityCheckContext = {
  current: DEFAULT_CAPABILITIES,
  incomingStarted: false,
  parameters: { 'multifd-compression': 'none', 'tls-creds': '' },
};

function caps(...on: MigrationCapability[]): MigrationCapabilities {
  return { ...DEFAULT_CAPABILITIES, ...Object.fromEntries(on.map((c) => [c, true])) };
}

/** The QEMU rules, without livemig's "not built yet" refusal getting in first. */
function ruleError(next: MigrationCapabilities, context: Partial<CapabilityCheckContext> = {}): string | null {
  try {
    checkCapabilities(next, { ...ctx, ...context });
    return null;
  } catch (error) {
    expect(error).to.be.instanceOf(QmpError);
    expect((error as QmpError).errorClass).to.equal('GenericError');
    return (error as QmpError).desc;
  }
}

describe('migration capabilities', () => {
  it("has QEMU 8.2's 23 capabilities, all off by default, in QAPI order", () => {
    expect(MIGRATION_CAPABILITIES).to.have.length(23);
    expect(MIGRATION_CAPABILITIES[0]).to.equal('xbzrle');
    expect(MIGRATION_CAPABILITIES[22]).to.equal('dirty-limit');
    expect(Object.values(DEFAULT_CAPABILITIES).every((on) => on === false)).to.equal(true);
    expect(queryCapabilities(DEFAULT_CAPABILITIES).map((c) => c.capability)).to.deep.equal([...MIGRATION_CAPABILITIES]);
  });

  it('classes each capability as the brief lists it', () => {
    const byClass = (cls: string) => MIGRATION_CAPABILITIES.filter((c) => CAPABILITY_SUPPORT[c] === cls);
    expect(byClass('built')).to.have.members([
      'events', 'pause-before-switchover', 'validate-uuid', 'return-path', 'multifd', 'postcopy-ram', 'postcopy-preempt', 'postcopy-blocktime',
      'release-ram', 'background-snapshot', 'x-colo', 'auto-converge', 'dirty-limit', 'switchover-ack', 'xbzrle',
    ]);
    expect(byClass('noop')).to.have.members(['late-block-activate', 'zero-blocks', 'dirty-bitmaps', 'block']);
    expect(byClass('refused')).to.have.length(23 - 19);
  });

  describe("migrate_caps_check's rules", () => {
    const rules: Array<[string, MigrationCapability[], string, MigrationCapability[]]> = [
      // [name, refused set, QEMU text, nearest accepted set]
      ['postcopy with ignore-shared', ['postcopy-ram', 'x-ignore-shared'], 'Postcopy is not compatible with ignore-shared', ['postcopy-ram']],
      ['zero copy without multifd', ['zero-copy-send'], 'Zero copy only available for non-compressed non-TLS multifd migration', ['zero-copy-send', 'multifd']],
      ['zero copy with compress', ['zero-copy-send', 'multifd', 'compress'], 'Zero copy only available for non-compressed non-TLS multifd migration', ['zero-copy-send', 'multifd']],
      ['zero copy with xbzrle', ['zero-copy-send', 'multifd', 'xbzrle'], 'Zero copy only available for non-compressed non-TLS multifd migration', ['zero-copy-send', 'multifd']],
      ['preempt without postcopy', ['postcopy-preempt'], 'Postcopy preempt requires postcopy-ram', ['postcopy-preempt', 'postcopy-ram']],
      ['preempt with compress', ['postcopy-preempt', 'postcopy-ram', 'compress'], 'Postcopy preempt not compatible with compress', ['postcopy-preempt', 'postcopy-ram']],
      ['multifd with compress', ['multifd', 'compress'], 'Multifd is not compatible with compress', ['multifd']],
      ['switchover-ack without return-path', ['switchover-ack'], "Capability 'switchover-ack' requires capability 'return-path'", ['switchover-ack', 'return-path']],
      ['dirty-limit with auto-converge', ['dirty-limit', 'auto-converge'], 'dirty-limit conflicts with auto-converge either of then available currently', ['dirty-limit']],
      ['multifd with xbzrle', ['multifd', 'xbzrle'], 'Multifd is not compatible with xbzrle', ['multifd']],
      ['compress with xbzrle', ['compress', 'xbzrle'], 'Compression is not compatible with xbzrle', ['compress']],
    ];
    for (const [name, refused, text, accepted] of rules) {
      it(`${name}: refused with QEMU's text, accepted without the conflict`, () => {
        expect(ruleError(caps(...refused))).to.equal(text);
        // What remains is only refused (if at all) for not being built yet.
        expect(ruleError(caps(...accepted))).to.be.oneOf([null, ...accepted.map((c) => `Capability '${c}' is not supported by livemig yet`)]);
      });
    }

    it('zero copy refuses compressed or TLS parameters', () => {
      const zc = caps('zero-copy-send', 'multifd');
      const text = 'Zero copy only available for non-compressed non-TLS multifd migration';
      expect(ruleError(zc, { parameters: { 'multifd-compression': 'zlib', 'tls-creds': '' } })).to.equal(text);
      expect(ruleError(zc, { parameters: { 'multifd-compression': 'none', 'tls-creds': 'tls0' } })).to.equal(text);
    });

    it('background-snapshot refuses each capability it excludes, naming it', () => {
      const excluded: MigrationCapability[] = [
        'postcopy-ram', 'dirty-bitmaps', 'postcopy-blocktime', 'late-block-activate', 'return-path', 'multifd',
        'pause-before-switchover', 'auto-converge', 'release-ram', 'rdma-pin-all', 'compress', 'xbzrle', 'x-colo',
        'validate-uuid', 'zero-copy-send',
      ];
      for (const other of excluded) {
        expect(ruleError(caps('background-snapshot', other))).to.equal(`Background-snapshot is not compatible with ${other}`);
      }
      expect(ruleError(caps('background-snapshot', 'events'))).to.equal(null);
      // QEMU's order: postcopy-ram is named before multifd.
      expect(ruleError(caps('background-snapshot', 'multifd', 'postcopy-ram'))).to.equal(
        'Background-snapshot is not compatible with postcopy-ram',
      );
    });

    it('refuses multifd once incoming has started, unless it was already on', () => {
      expect(ruleError(caps('multifd'), { incomingStarted: true })).to.equal('Multifd must be set before incoming starts');
      expect(ruleError(caps('multifd', 'events'), { incomingStarted: true, current: caps('multifd') })).to.equal(null);
      expect(ruleError(caps('multifd'), { incomingStarted: false })).to.equal(null);
    });

    it('refuses postcopy-preempt once incoming has started, unless it was already on', () => {
      const on = caps('postcopy-ram', 'postcopy-preempt');
      expect(ruleError(on, { incomingStarted: true })).to.equal('Postcopy preempt must be set before incoming starts');
      expect(ruleError(on, { incomingStarted: true, current: on })).to.equal(null);
    });

    it('allows postcopy-ram with multifd (DESIGN §10, QEMU 10 rule)', () => {
      expect(ruleError(caps('postcopy-ram', 'multifd'))).to.equal(null);
    });

    it('warns that block and compress are deprecated', () => {
      const warnings: string[] = [];
      checkCapabilities(caps('block'), { ...ctx, warn: (w) => warnings.push(w) });
      expect(ruleError(caps('compress'), { warn: (w) => warnings.push(w) })).to.equal(
        "Capability 'compress' is not supported by livemig yet",
      );
      expect(warnings).to.deep.equal([
        'block migration is deprecated; use blockdev-mirror with NBD instead',
        'old compression method is deprecated; use multifd compression methods instead',
      ]);
    });
  });

  describe("livemig's support classes", () => {
    /** What QEMU's rules require alongside a capability. */
    const companions: Partial<Record<MigrationCapability, MigrationCapability[]>> = {
      'switchover-ack': ['return-path'],
      'zero-copy-send': ['multifd'],
      'postcopy-preempt': ['postcopy-ram'],
    };
    for (const capability of MIGRATION_CAPABILITIES) {
      const support = CAPABILITY_SUPPORT[capability];
      it(`${capability} (${support}) ${support === 'refused' ? 'is refused by name' : 'is accepted'}`, () => {
        const on = caps(capability, ...(companions[capability] ?? []));
        // The first unbuilt capability of the set, in QAPI order, is the one named.
        const named = MIGRATION_CAPABILITIES.find((c) => on[c] && CAPABILITY_SUPPORT[c] === 'refused');
        expect(named === undefined).to.equal(support !== 'refused');
        expect(ruleError(on)).to.equal(named === undefined ? null : `Capability '${named}' is not supported by livemig yet`);
      });
    }

    it('lets a refused capability be turned off', () => {
      expect(ruleError(caps())).to.equal(null);
    });
  });

  describe('applyCapabilities', () => {
    const setCtx: SetCapabilitiesContext = { migrationRunning: false, incomingStarted: false, parameters: ctx.parameters };

    it('returns the new set with the changes applied, a later entry winning', () => {
      const next = applyCapabilities(DEFAULT_CAPABILITIES, [
        { capability: 'events', state: true },
        { capability: 'multifd', state: true },
        { capability: 'multifd', state: false },
        { capability: 'return-path', state: true },
      ], setCtx);
      expect(queryCapabilities(next).filter((c) => c.state).map((c) => c.capability)).to.deep.equal(['events', 'return-path']);
      expect(DEFAULT_CAPABILITIES.events).to.equal(false);
    });

    it('applies all or nothing', () => {
      const current = caps('events');
      let error: unknown;
      try {
        applyCapabilities(current, [
          { capability: 'return-path', state: true },
          { capability: 'switchover-ack', state: false },
          { capability: 'multifd', state: true },
          { capability: 'xbzrle', state: true },
        ], setCtx);
      } catch (e) {
        error = e;
      }
      expect((error as QmpError).desc).to.equal('Multifd is not compatible with xbzrle');
      expect(current).to.deep.equal(caps('events'));
    });

    it('checks the whole set, not only the changes', () => {
      expect(() =>
        applyCapabilities(caps('multifd'), [{ capability: 'xbzrle', state: true }], setCtx),
      ).to.throw(QmpError, 'Multifd is not compatible with xbzrle');
    });

    it("refuses any change while a migration runs, with QEMU's text", () => {
      expect(() =>
        applyCapabilities(DEFAULT_CAPABILITIES, [{ capability: 'events', state: true }], { ...setCtx, migrationRunning: true }),
      ).to.throw(QmpError, "There's a migration process in progress");
    });

    it('takes the validated QMP arguments of migrate-set-capabilities', () => {
      const args = validateArguments(MIGRATE_SET_CAPABILITIES_ARGS, { capabilities: [{ capability: 'events', state: true }] });
      expect(applyCapabilities(DEFAULT_CAPABILITIES, args.capabilities, setCtx).events).to.equal(true);
      expect(() => validateArguments(MIGRATE_SET_CAPABILITIES_ARGS, { capabilities: [{ capability: 'turbo', state: true }] })).to.throw(
        QmpError,
        "Parameter 'capability' does not accept value 'turbo'",
      );
    });
  });

  describe('parseCapFlag', () => {
    it('reads NAME, NAME=on and NAME=off', () => {
      expect(parseCapFlag('multifd')).to.deep.equal({ capability: 'multifd', state: true });
      expect(parseCapFlag('multifd=on')).to.deep.equal({ capability: 'multifd', state: true });
      expect(parseCapFlag('events=off')).to.deep.equal({ capability: 'events', state: false });
      expect(parseCapFlag('events=yes')).to.deep.equal({ capability: 'events', state: true });
    });

    it('refuses an unknown capability or value in one line', () => {
      expect(() => parseCapFlag('turbo=on')).to.throw(StartupFlagError, "--cap turbo=on: unknown capability 'turbo'");
      expect(() => parseCapFlag('multifd=maybe')).to.throw(StartupFlagError, "--cap multifd=maybe: 'maybe' is not on or off");
    });
  });
});
