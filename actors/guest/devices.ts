import { C1, Packr } from 'msgpackr';

/**
 * A device's migratable state: QEMU's SaveStateEntry / vmstate section. The
 * state is any msgpack-able value; `load` receives it decoded and may throw
 * to refuse it.
 */
export interface DeviceSection {
  name: string;
  instance: number;
  version: number;
  save(): unknown;
  load(state: unknown, version: number): void;
  /** Set when the device cannot be migrated: the reason is a migration blocker. */
  nonMigratable?: string;
}

export interface SavedSection {
  name: string;
  instance: number;
  version: number;
  state: Uint8Array;
}

export class DeviceStateError extends Error {
  constructor(readonly code: 'UNKNOWN_SECTION' | 'BAD_VERSION' | 'MALFORMED_STATE' | 'LOAD_REFUSED', message: string) {
    super(message);
  }
}

const packr = new Packr({ useRecords: false, moreTypes: false });

/** The guest's device-state registry, in registration order (QEMU's savevm_state.handlers). */
export class DeviceRegistry {
  private readonly sections: DeviceSection[] = [];

  register(section: DeviceSection): void {
    if (this.find(section.name, section.instance)) {
      throw new Error(`device section '${section.name}' instance ${section.instance} is already registered`);
    }
    this.sections.push(section);
  }

  /** Removes a section (a device unplugged); false when there is none. */
  unregister(name: string, instance: number): boolean {
    const at = this.sections.findIndex((s) => s.name === name && s.instance === instance);
    if (at < 0) return false;
    this.sections.splice(at, 1);
    return true;
  }

  list(): readonly DeviceSection[] {
    return this.sections;
  }

  find(name: string, instance: number): DeviceSection | undefined {
    return this.sections.find((s) => s.name === name && s.instance === instance);
  }

  /** Migration blockers, as QEMU words them in blocked-reasons. */
  blockers(): string[] {
    return this.sections.filter((s) => s.nonMigratable).map((s) => s.nonMigratable!);
  }

  saveAll(): SavedSection[] {
    return this.sections.map((s) => ({
      name: s.name,
      instance: s.instance,
      version: s.version,
      // Copy: consecutive pack() results share one buffer.
      state: Uint8Array.prototype.slice.call(packr.pack(s.save())),
    }));
  }

  /** Loads one saved section; every refusal is a DeviceStateError a person can act on. */
  load(saved: SavedSection): void {
    const section = this.find(saved.name, saved.instance);
    if (!section) {
      throw new DeviceStateError(
        'UNKNOWN_SECTION',
        `Unknown savevm section or instance '${saved.name}' ${saved.instance}. ` +
          'Make sure that your current VM setup matches your saved VM setup',
      );
    }
    if (saved.version > section.version) {
      throw new DeviceStateError(
        'BAD_VERSION',
        `savevm: unsupported version ${saved.version} for '${saved.name}' v${section.version}`,
      );
    }
    let state: unknown;
    try {
      const values = packr.unpackMultiple(saved.state) as unknown[];
      if (values.length !== 1) throw new Error(`${values.length} values where one was expected`);
      state = values[0];
      // 0xc1 is msgpack's never-used byte; msgpackr decodes it to a marker.
      if (containsC1(state)) throw new Error('reserved byte 0xc1 in the data');
    } catch (err) {
      throw new DeviceStateError(
        'MALFORMED_STATE',
        `device state of '${saved.name}' ${saved.instance} is malformed: ${(err as Error).message}`,
      );
    }
    try {
      section.load(state, saved.version);
    } catch (err) {
      if (err instanceof DeviceStateError) throw err;
      throw new DeviceStateError('LOAD_REFUSED', `error while loading state for '${saved.name}' ${saved.instance}: ${(err as Error).message}`);
    }
  }
}

function containsC1(value: unknown): boolean {
  if (value === C1) return true;
  if (Array.isArray(value)) return value.some(containsC1);
  if (value && typeof value === 'object' && !(value instanceof Uint8Array)) return Object.values(value).some(containsC1);
  return false;
}
