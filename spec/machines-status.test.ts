import { expect } from 'chai';
import {
  hasFailed,
  inPostcopy,
  isIdle,
  isMigrationStatus,
  isRunning,
  isSetupOrActive,
  migrationStatuses,
  type MigrationStatus,
} from '../machines/status.js';

const where = (test: (status: MigrationStatus) => boolean) => migrationStatuses.filter(test);

describe('migration status', () => {
  it('lists QEMU 8.2 MigrationStatus values in QAPI order', () => {
    expect(migrationStatuses).to.deep.equal([
      'none',
      'setup',
      'cancelling',
      'cancelled',
      'active',
      'postcopy-active',
      'postcopy-paused',
      'postcopy-recover',
      'completed',
      'failed',
      'colo',
      'pre-switchover',
      'device',
      'wait-unplug',
    ]);
  });

  it('recognises status names and rejects others', () => {
    expect(isMigrationStatus('pre-switchover')).to.equal(true);
    expect(isMigrationStatus('postcopy-recover-setup')).to.equal(false);
    expect(isMigrationStatus('')).to.equal(false);
  });

  it('groups setup-or-active like migration_is_setup_or_active (colo in, cancelling out)', () => {
    expect(where(isSetupOrActive)).to.deep.equal([
      'setup',
      'active',
      'postcopy-active',
      'postcopy-paused',
      'postcopy-recover',
      'colo',
      'pre-switchover',
      'device',
      'wait-unplug',
    ]);
  });

  it('groups running like migration_is_running (cancelling in, colo out)', () => {
    expect(where(isRunning)).to.deep.equal([
      'setup',
      'cancelling',
      'active',
      'postcopy-active',
      'postcopy-paused',
      'postcopy-recover',
      'pre-switchover',
      'device',
      'wait-unplug',
    ]);
  });

  it('groups idle like migration_is_idle', () => {
    expect(where(isIdle)).to.deep.equal(['none', 'cancelled', 'completed', 'failed']);
  });

  it('groups postcopy like migration_in_postcopy', () => {
    expect(where(inPostcopy)).to.deep.equal(['postcopy-active', 'postcopy-paused', 'postcopy-recover']);
  });

  it('groups failed like migration_has_failed', () => {
    expect(where(hasFailed)).to.deep.equal(['cancelled', 'failed']);
  });
});
