/**
 * A real link for the campaign's link faults: two network namespaces the
 * harness creates, joined by a veth pair with an address each on a private
 * /30, the source in one and the destination in the other (`ip netns exec
 * NS node ...`; ip execs node, so the child's pid is node's). Their QMP
 * sockets are unix sockets in the filesystem, reached from the harness's
 * namespace as usual. Faults act on the kernel's link, not on a proxy:
 * `ip link set VETH down` drops every packet without a reset (TCP
 * retransmits until the link is back), and an htb qdisc makes the link
 * really slow.
 *
 * Every name starts with a prefix this harness owns and carries the pid of
 * the campaign that made it, so a crashed earlier run's namespaces and
 * veths (and the instances it left running in them) are found and removed
 * at start (removeStaleLinks) without touching those of a campaign still
 * running.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { alive } from './campaign-alive.js';

/** Namespaces are `lmchaos-<pid>-<n>-src|dst`; veths `lmc<pid>x<n>s|d` (at most 15 characters). */
const NS_PREFIX = 'lmchaos-';
const VETH_PREFIX = 'lmc';

/** The /30 both ends share: namespaces keep their addresses to themselves, so every link may use the same. */
const NET = '10.232.0';
const PREFIX_LENGTH = 30;
/** The destination's address on every link (a TLS server certificate names it). */
export const NETNS_DESTINATION = `${NET}.2`;

export type Side = 'source' | 'destination';

let made = 0;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).toString();
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // already gone
  }
}

export class NetnsLink {
  /** The namespace each side runs in. */
  readonly ns: Record<Side, string>;
  /** Each side's end of the veth pair (in its namespace). */
  readonly veth: Record<Side, string>;
  readonly address: Record<Side, string> = { source: `${NET}.1`, destination: NETNS_DESTINATION };
  private shaped = new Set<Side>();

  private constructor(n: number) {
    const tag = `${process.pid}-${n}`;
    this.ns = { source: `${NS_PREFIX}${tag}-src`, destination: `${NS_PREFIX}${tag}-dst` };
    // A pid has at most 7 digits: 3 + 7 + 1 + 3 + 1 = 15 characters.
    const short = `${process.pid}x${n % 1000}`;
    this.veth = { source: `${VETH_PREFIX}${short}s`, destination: `${VETH_PREFIX}${short}d` };
  }

  /** Creates both namespaces, the veth pair between them, addresses and links up; on failure removes what it made. */
  static create(): NetnsLink {
    const link = new NetnsLink(made++);
    try {
      for (const side of ['source', 'destination'] as const) ip('netns', 'add', link.ns[side]);
      ip('link', 'add', link.veth.source, 'type', 'veth', 'peer', 'name', link.veth.destination);
      for (const side of ['source', 'destination'] as const) {
        ip('link', 'set', link.veth[side], 'netns', link.ns[side]);
        ip('-n', link.ns[side], 'addr', 'add', `${link.address[side]}/${PREFIX_LENGTH}`, 'dev', link.veth[side]);
        ip('-n', link.ns[side], 'link', 'set', link.veth[side], 'up');
        ip('-n', link.ns[side], 'link', 'set', 'lo', 'up');
      }
    } catch (error) {
      link.destroy();
      throw new Error(`could not create the netns link: ${(error as Error).message.split('\n')[0]}`);
    }
    return link;
  }

  /** What runs a command in a side's namespace (startInstance's `wrap`). */
  wrap(side: Side): string[] {
    return ['ip', 'netns', 'exec', this.ns[side]];
  }

  /** Takes a side's end of the veth down or up: down, packets are dropped both ways with no reset. */
  setLink(side: Side, state: 'up' | 'down'): void {
    ip('-n', this.ns[side], 'link', 'set', this.veth[side], state);
  }

  /** An htb qdisc on both ends: every packet out of either leaves at no more than `rate` (tc's units, e.g. 20mbit). */
  shape(rate: string): void {
    for (const side of ['source', 'destination'] as const) {
      const tc = ['netns', 'exec', this.ns[side], 'tc'];
      ip(...tc, 'qdisc', 'add', 'dev', this.veth[side], 'root', 'handle', '1:', 'htb', 'default', '10');
      this.shaped.add(side);
      ip(...tc, 'class', 'add', 'dev', this.veth[side], 'parent', '1:', 'classid', '1:10', 'htb', 'rate', rate);
    }
  }

  /** Removes the htb qdiscs: full speed again. */
  unshape(): void {
    for (const side of this.shaped) ip('netns', 'exec', this.ns[side], 'tc', 'qdisc', 'del', 'dev', this.veth[side], 'root');
    this.shaped.clear();
  }

  /** Removes both namespaces (which takes the veth pair with them) and the pair itself, were it left outside them. */
  destroy(): void {
    for (const side of ['source', 'destination'] as const) tryIp('netns', 'del', this.ns[side]);
    tryIp('link', 'del', this.veth.source);
  }

  /** What of this link is still there (after destroy: nothing). */
  leftovers(): string[] {
    return [...namespaces().filter((ns) => Object.values(this.ns).includes(ns)), ...links().filter((l) => Object.values(this.veth).includes(l))];
  }
}

function namespaces(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns') : [];
}

/** Names of the links in the harness's own namespace. */
function links(): string[] {
  return ip('-o', 'link', 'show')
    .split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

/** The processes in a namespace. */
function pidsIn(ns: string): number[] {
  try {
    return ip('netns', 'pids', ns).split('\n').filter((line) => /^\d+$/.test(line.trim())).map(Number);
  } catch {
    return [];
  }
}

/** Removes namespaces and veths of this harness left by a campaign that is no longer running; their names. */
export function removeStaleLinks(): string[] {
  const removed: string[] = [];
  for (const ns of namespaces()) {
    const pid = Number(new RegExp(`^${NS_PREFIX}(\\d+)-`).exec(ns)?.[1]);
    if (!pid || (pid !== process.pid && alive(pid))) continue;
    // Instances the crashed campaign left running in it: only its own are there.
    for (const orphan of pidsIn(ns)) {
      try {
        process.kill(orphan, 'SIGKILL');
        removed.push(`process ${orphan} (in ${ns})`);
      } catch {}
    }
    tryIp('netns', 'del', ns);
    removed.push(ns);
  }
  for (const link of links()) {
    const pid = Number(new RegExp(`^${VETH_PREFIX}(\\d+)x\\d+[sd]$`).exec(link)?.[1]);
    if (!pid || (pid !== process.pid && alive(pid))) continue;
    tryIp('link', 'del', link);
    removed.push(link);
  }
  return removed;
}

/** Why network namespaces cannot be used here, or undefined when they can (tried once with a throwaway link). */
export function netnsUnavailable(): string | undefined {
  try {
    NetnsLink.create().destroy();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
