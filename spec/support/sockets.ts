/**
 * One process's TCP connections, and closing one of them from outside the
 * process as a failing host or a firewall would (`ss -K`, which needs the
 * kernel's socket-destroy support: present here). Used to cut one end of
 * one connection, where a proxy would cut both.
 */
import { execFileSync } from 'node:child_process';

export interface Connection {
  local: { address: string; port: number };
  peer: { address: string; port: number };
}

/** The established TCP connections of process `pid` (IPv4), as `ss` lists them. */
export function connectionsOf(pid: number): Connection[] {
  const out = execFileSync('ss', ['-tnpH', '-4', 'state', 'established'], { encoding: 'utf8' });
  const connections: Connection[] = [];
  for (const line of out.split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    // Recv-Q Send-Q Local:Port Peer:Port users:(...)
    const [, , local, peer] = line.trim().split(/\s+/);
    const split = (endpoint: string) => {
      const at = endpoint.lastIndexOf(':');
      return { address: endpoint.slice(0, at), port: Number(endpoint.slice(at + 1)) };
    };
    if (local && peer) connections.push({ local: split(local), peer: split(peer) });
  }
  return connections;
}

/** Closes (aborts) the sockets whose local port is `port`: one end of each of those connections. */
export function killLocalPort(port: number): void {
  execFileSync('ss', ['-K', 'state', 'established', 'sport', '=', `:${port}`], { stdio: 'ignore' });
}
