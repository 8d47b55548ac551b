/**
 * The two engines the comparison drives: Debian's QEMU (TCG, no disk, a
 * 64 MiB guest) and livemig, each as a source and a destination started
 * with `-incoming defer`, as libvirt starts them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quitAll, startQemu } from '../bench/qemu-migration.js';
import { spawnInstance } from '../instance-process.js';
import type { EnginePair } from './record.js';

const RAM = 64 << 20;

export async function qemuPair(): Promise<EnginePair> {
  const dir = mkdtempSync(join(tmpdir(), 'qmp-compare-qemu-'));
  // Running guests (no -S), as an orchestrator migrates them.
  const [src, dst] = await Promise.all([
    startQemu([], join(dir, 'src.qmp'), RAM, false),
    startQemu(['-incoming', 'defer'], join(dir, 'dst.qmp'), RAM, false),
  ]);
  return {
    src: src.qmp,
    dst: dst.qmp,
    close: async () => {
      await quitAll([src, dst]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function livemigPair(): Promise<EnginePair> {
  const dir = mkdtempSync(join(tmpdir(), 'qmp-compare-livemig-'));
  const [src, dst] = await Promise.all([
    spawnInstance(['--ram', '64M'], { socket: join(dir, 'src.qmp'), name: 'src' }),
    spawnInstance(['--ram', '64M', '--incoming', 'defer'], { socket: join(dir, 'dst.qmp'), name: 'dst' }),
  ]);
  return {
    src: src.qmp,
    dst: dst.qmp,
    close: async () => {
      for (const i of [src, dst]) {
        await i.qmp.execute('quit').catch(() => {});
        await i.qmp.close().catch(() => {});
      }
      await Promise.all([src.exited, dst.exited]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
