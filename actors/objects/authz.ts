/**
 * QEMU's authorisation objects: who (a TLS client's distinguished name) may
 * connect. authz-simple allows one identity; authz-list checks rules in
 * order (the first match decides, else the default policy); authz-listfile
 * is authz-list read from a JSON file, read again when it changes if
 * `refresh` is on.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';

export type AuthzPolicy = 'allow' | 'deny';

export interface AuthzRule {
  match: string;
  policy: AuthzPolicy;
  format: 'exact' | 'glob';
}

/** An authorisation as plain data (what a channel thread is given). */
export interface AuthzRules {
  rules: readonly AuthzRule[];
  policy: AuthzPolicy;
}

export interface Authz {
  kind: 'authz-simple' | 'authz-list' | 'authz-listfile';
  isAllowed(identity: string): boolean;
  /** The rules in force now. */
  snapshot(): AuthzRules;
  /** Stops watching a list file. */
  close(): void;
}

/** fnmatch(3) without flags, as QEMU's glob rules use it: `*` and `?` match any character, `/` too. */
function globMatches(pattern: string, text: string): boolean {
  const source = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[\\s\\S]*').replace(/\?/g, '[\\s\\S]');
  return new RegExp(`^${source}$`).test(text);
}

function listAllows(rules: readonly AuthzRule[], policy: AuthzPolicy, identity: string): boolean {
  const rule = rules.find((r) => (r.format === 'glob' ? globMatches(r.match, identity) : r.match === identity));
  return (rule?.policy ?? policy) === 'allow';
}

export function authzSimple(identity: string): Authz {
  return { ...authzList([{ match: identity, policy: 'allow', format: 'exact' }], 'deny'), kind: 'authz-simple' };
}

export function authzList(rules: readonly AuthzRule[], policy: AuthzPolicy): Authz {
  return { kind: 'authz-list', isAllowed: (who) => listAllows(rules, policy, who), snapshot: () => ({ rules, policy }), close: () => {} };
}

/** Reads an authz-listfile: `{"policy": "allow"|"deny", "rules": [{match, policy, format?}]}`. */
function readListFile(filename: string): { rules: AuthzRule[]; policy: AuthzPolicy } {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(filename, 'utf8'));
  } catch (err) {
    throw new Error(`Unable to read authorization list ${filename}: ${(err as Error).message}`);
  }
  const list = value as { policy?: unknown; rules?: unknown } | null;
  const policyOf = (p: unknown): p is AuthzPolicy => p === 'allow' || p === 'deny';
  const rules = list?.rules ?? [];
  if (!list || typeof list !== 'object' || (list.policy !== undefined && !policyOf(list.policy)) || !Array.isArray(rules)) {
    throw new Error(`Authorization list ${filename} is not {"policy": "allow"|"deny", "rules": [...]}`);
  }
  return {
    policy: (list.policy as AuthzPolicy | undefined) ?? 'deny',
    rules: rules.map((r: unknown, i) => {
      const rule = r as Partial<AuthzRule> | null;
      if (!rule || typeof rule.match !== 'string' || !policyOf(rule.policy) || (rule.format !== undefined && rule.format !== 'exact' && rule.format !== 'glob')) {
        throw new Error(`Authorization list ${filename}: rule ${i} is not {"match": string, "policy": "allow"|"deny", "format"?: "exact"|"glob"}`);
      }
      return { match: rule.match, policy: rule.policy, format: rule.format ?? 'exact' };
    }),
  };
}

export function authzListFile(filename: string, refresh: boolean): Authz {
  let list = readListFile(filename);
  let watcher: FSWatcher | undefined;
  if (refresh) {
    // A file being rewritten may be read half-way: the last list that read whole stays in force.
    watcher = watch(filename, () => {
      try {
        list = readListFile(filename);
      } catch {
        // Kept: the previous list.
      }
    });
    watcher.unref();
  }
  return { kind: 'authz-listfile', isAllowed: (who) => listAllows(list.rules, list.policy, who), snapshot: () => list, close: () => watcher?.close() };
}
