/**
 * announce-self (QEMU's qmp_announce_self): the guest's NIC announces
 * itself now and on the given schedule (actors/net/announce.ts), whether
 * or not a migration ran. As in QEMU, the arguments are not range-checked,
 * each `id` names a timer of its own, and a second command with the same
 * id (or none, which is the id "") restarts that timer's rounds.
 */
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { qapi } from '../../protocols/qmp/schema.js';
import { AnnounceTimer } from '../net/announce.js';
import type { MonitorHost } from './host.js';

export function announceCommands(host: MonitorHost): [string, QmpCommand][] {
  /** QEMU's named_timers. */
  const timers = new Map<string, AnnounceTimer>();
  return [
    ['announce-self', defineCommand({
      args: qapi.object({
        initial: qapi.int,
        max: qapi.int,
        rounds: qapi.int,
        step: qapi.int,
        interfaces: qapi.optional(qapi.array(qapi.str)),
        id: qapi.optional(qapi.str),
      }),
      run: ({ initial, max, rounds, step, interfaces, id }) => {
        const name = id ?? '';
        let timer = timers.get(name);
        if (!timer) {
          timer = new AnnounceTimer((only) => host.network.announce(only));
          timers.set(name, timer);
        }
        timer.start({ initial: Number(initial), max: Number(max), rounds: Number(rounds), step: Number(step), ...(interfaces ? { interfaces } : {}), ...(id !== undefined ? { id } : {}) });
        return {};
      },
    })],
  ];
}
