/**
 * A destination's multifd channel worker threads, found from outside the
 * process, so a test can hold one of them back (thread-freeze.ts).
 */
import { readdirSync } from 'node:fs';
import type { QmpClient } from '../../protocols/qmp/client.js';
import { channelThreads } from '../../actors/multifd/channel-threads.js';

/** The ids of a process's threads. */
function threadIds(pid: number): Set<number> {
  return new Set(readdirSync(`/proc/${pid}/task`).map(Number));
}

/**
 * Turns multifd on in a destination started without it and returns the
 * thread of each channel, in channel order: the destination starts (warms)
 * its channel threads in one go as multifd is turned on, so they hold the
 * lowest new thread ids, and channel i runs on thread i mod their count
 * (channel-threads.ts: more channels than cores share threads).
 */
export async function enableMultifdChannels(qmp: QmpClient, pid: number, channels: number): Promise<number[]> {
  const before = threadIds(pid);
  const threads = channelThreads(channels);
  await qmp.execute('migrate-set-parameters', { 'multifd-channels': channels });
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'multifd', state: true }] });
  const deadline = Date.now() + 5000;
  for (;;) {
    const started = [...threadIds(pid)].filter((tid) => !before.has(tid)).sort((a, b) => a - b);
    if (started.length >= threads) return Array.from({ length: channels }, (_, i) => started[i % threads]!);
    if (Date.now() > deadline) throw new Error(`turning multifd on started ${started.length} threads, not ${threads}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
