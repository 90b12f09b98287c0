/**
 * The signing key in Secrets Manager, shared with a SignalWire TypeScript agent.
 *
 * `@signalwire/sdk`'s AgentBase makes a SessionManager of its own with a random key, and
 * checks a secure tool's token with it before any handler of ours runs. On Lambda each
 * instance would then refuse the tokens every other instance (and the session API) minted.
 * This module gives that SessionManager the secret's AWSCURRENT key, and lets it accept a
 * token signed with AWSPREVIOUS too, so rotating the secret breaks no call in progress.
 *
 * The SDK validates synchronously, so the keys must be in hand before it sees a request:
 * `withSharedKey` wraps the Lambda handler and awaits `ready()` first. That reads the
 * secret once per instance and again after `SECRET_CACHE_SECS`, and looks again at once
 * when a request carries a token signed by neither key (a rotation this instance has not
 * seen yet), at most every 10 seconds so forged tokens cannot flood Secrets Manager.
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";

/** The key is the secret's SecretString, used as UTF-8 bytes, as the SDK uses its key. */
export const MIN_KEY_CHARS = 32;
/** How often a token signed by an unknown key may make us fetch the secret again. */
export const MIN_REFRESH_INTERVAL_MS = 10_000;
const DEFAULT_CACHE_SECS = 300;

/** What the helper relies on in the SDK's SessionManager: it signs and checks with `secretKey`. */
export interface TokenManager {
  secretKey: string;
  validateToken(callId: string, functionName: string, token: string): boolean;
}

export interface SharedKeyOptions {
  /** Secret name or ARN; default `SIGNING_SECRET_ID`. */
  secretId?: string;
  /** How long fetched keys are reused; default `SECRET_CACHE_SECS`, else 300. */
  cacheSecs?: number;
  /** Default: a client from the environment (region, credentials, `AWS_ENDPOINT_URL*`). */
  client?: SecretsManagerClient;
  /** Milliseconds clock; tests move it. */
  now?: () => number;
}

/** The secret is missing, unreadable as a key, or not named: retrying will not help. */
export class SharedKeyConfigError extends Error {
  override name = "SharedKeyConfigError";
}

/** Secrets Manager did not answer and no key is cached yet: retrying may help. */
export class SharedKeyUnavailableError extends Error {
  override name = "SharedKeyUnavailableError";
}

export class SharedSigningKey {
  private readonly secretId: string;
  private readonly cacheMs: number;
  private readonly now: () => number;
  private client: SecretsManagerClient | undefined;
  private current: string | undefined;
  private previous: string | undefined;
  private loadedAt = Number.NEGATIVE_INFINITY;
  private lastLookAgain = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | undefined;
  private readonly managers = new Set<TokenManager>();

  constructor(options: SharedKeyOptions = {}) {
    const secretId = options.secretId ?? process.env["SIGNING_SECRET_ID"];
    if (!secretId) {
      throw new SharedKeyConfigError("no secret: set SIGNING_SECRET_ID or pass secretId");
    }
    const cacheSecs = options.cacheSecs ?? Number(process.env["SECRET_CACHE_SECS"] ?? DEFAULT_CACHE_SECS);
    if (!Number.isFinite(cacheSecs) || cacheSecs < 0) {
      throw new SharedKeyConfigError("SECRET_CACHE_SECS must be a number of seconds, 0 or more");
    }
    this.secretId = secretId;
    this.cacheMs = cacheSecs * 1000;
    this.now = options.now ?? Date.now;
    this.client = options.client;
  }

  /**
   * Make `manager` sign with AWSCURRENT and accept AWSCURRENT or AWSPREVIOUS.
   *
   * Its own `validateToken` does the checking (call id, function, expiry, signature): a
   * token it refuses with the current key is given to it once more with the previous key,
   * and only when that key signed it.
   */
  install(manager: TokenManager): void {
    if (this.managers.has(manager)) return;
    const validate = manager.validateToken.bind(manager);
    manager.validateToken = (callId: string, functionName: string, token: string): boolean => {
      if (validate(callId, functionName, token)) return true;
      const previous = this.previous;
      if (previous === undefined || !signedWith(token, previous)) return false;
      const current = manager.secretKey;
      manager.secretKey = previous; // validation is synchronous: nothing else runs meanwhile
      try {
        return validate(callId, functionName, token);
      } finally {
        manager.secretKey = current;
      }
    };
    this.managers.add(manager);
    if (this.current !== undefined) manager.secretKey = this.current;
  }

  /**
   * Have the keys in hand before the SDK sees a request: fetched on first use and after
   * the cache period; fetched again at once when `token` is signed by neither key.
   */
  async ready(token?: string): Promise<void> {
    const now = this.now();
    if (this.current === undefined || now - this.loadedAt >= this.cacheMs) {
      return this.load();
    }
    if (token && !this.knows(token) && now - this.lastLookAgain >= MIN_REFRESH_INTERVAL_MS) {
      this.lastLookAgain = now;
      return this.load();
    }
  }

  /** Whether `token` is signed with a key this instance holds (nothing else is checked). */
  knows(token: string): boolean {
    return [this.current, this.previous].some((key) => key !== undefined && signedWith(token, key));
  }

  private load(): Promise<void> {
    // One fetch at a time, shared by every request that waits for it.
    this.loading ??= this.fetchBoth().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async fetchBoth(): Promise<void> {
    let current: string | undefined;
    let previous: string | undefined;
    try {
      [current, previous] = await Promise.all([this.fetch("AWSCURRENT"), this.fetch("AWSPREVIOUS")]);
    } catch (error) {
      if (error instanceof SharedKeyConfigError) throw error;
      if (this.current === undefined) {
        throw new SharedKeyUnavailableError(`Secrets Manager did not answer for ${this.secretId}`);
      }
      // A cached key beats an outage: keep it, and ask again after the cache period.
      console.warn(JSON.stringify({ level: "WARNING", message: "Secrets Manager unreachable; keeping the cached signing key" }));
      this.loadedAt = this.now();
      return;
    }
    if (current === undefined) {
      throw new SharedKeyConfigError(`secret ${this.secretId} has no AWSCURRENT version`);
    }
    this.current = current;
    this.previous = previous;
    this.loadedAt = this.now();
    for (const manager of this.managers) manager.secretKey = current;
  }

  private async fetch(stage: "AWSCURRENT" | "AWSPREVIOUS"): Promise<string | undefined> {
    this.client ??= new SecretsManagerClient({
      // An agent's request has seconds, not the SDK's default retries and no timeout.
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 1000, requestTimeout: 2000 },
    });
    let secret: string | undefined;
    try {
      const answer = await this.client.send(
        new GetSecretValueCommand({ SecretId: this.secretId, VersionStage: stage }),
      );
      secret = answer.SecretString;
    } catch (error) {
      // No AWSPREVIOUS until the first rotation.
      if (error instanceof ResourceNotFoundException && stage === "AWSPREVIOUS") return undefined;
      if (error instanceof ResourceNotFoundException) {
        throw new SharedKeyConfigError(`secret ${this.secretId} not found`);
      }
      throw error;
    }
    if (typeof secret !== "string" || secret.length < MIN_KEY_CHARS) {
      throw new SharedKeyConfigError(
        `secret ${this.secretId} (${stage}): the key must be a SecretString of at least ${MIN_KEY_CHARS} characters`,
      );
    }
    return secret;
  }
}

/**
 * Whether `token` (the SDK's wire format) carries a signature made with `key`:
 * base64url of `{call_id}.{function}.{expiry}.{nonce}.{hex hmac}`, the HMAC-SHA256 taken
 * over `{call_id}:{function}:{expiry}:{nonce}`. The call id may hold dots.
 */
export function signedWith(token: string, key: string): boolean {
  const parts = Buffer.from(token, "base64url").toString("utf8").split(".");
  if (parts.length < 5) return false;
  const [functionName, expiry, nonce, signature] = parts.slice(-4) as [string, string, string, string];
  const callId = parts.slice(0, -4).join(".");
  const expected = createHmac("sha256", key).update(`${callId}:${functionName}:${expiry}:${nonce}`).digest();
  const given = Buffer.from(signature, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** An agent of `@signalwire/sdk` keeps its SessionManager in `sessionManager` (private in its types). */
export function sessionManagerOf(agent: object): TokenManager {
  const manager: unknown = (agent as { sessionManager?: unknown }).sessionManager;
  if (
    typeof manager !== "object" || manager === null ||
    typeof (manager as TokenManager).secretKey !== "string" ||
    typeof (manager as TokenManager).validateToken !== "function"
  ) {
    throw new TypeError("this agent has no SessionManager in `sessionManager` (as @signalwire/sdk 2.x's AgentBase has)");
  }
  return manager as TokenManager;
}

/** Share the secret's key with `agent` (an `@signalwire/sdk` AgentBase). Call once, at cold start. */
export function shareSigningKey(agent: object, options: SharedKeyOptions = {}): SharedSigningKey {
  const keys = new SharedSigningKey(options);
  keys.install(sessionManagerOf(agent));
  return keys;
}

/** The tool token in a Lambda event's query string, where the SDK looks for it. */
export function tokenIn(event: unknown): string | undefined {
  if (typeof event !== "object" || event === null) return undefined;
  const { queryStringParameters: single, multiValueQueryStringParameters: multi } = event as {
    queryStringParameters?: Record<string, string | undefined> | null;
    multiValueQueryStringParameters?: Record<string, string[] | undefined> | null;
  };
  const value = single?.["__token"] ?? single?.["token"] ?? multi?.["__token"]?.[0] ?? multi?.["token"]?.[0];
  return typeof value === "string" ? value : undefined;
}

export interface UnavailableResponse {
  statusCode: 503;
  headers: Record<string, string>;
  body: string;
}

/**
 * A Lambda handler that has the keys in hand before `handler` (the SDK) sees the event.
 * When no key could be read yet, the answer is a 503 with Retry-After, not a refusal
 * from a random key.
 */
export function withSharedKey<E, C extends unknown[], R>(
  keys: SharedSigningKey,
  handler: (event: E, ...rest: C) => Promise<R>,
): (event: E, ...rest: C) => Promise<R | UnavailableResponse> {
  return async (event: E, ...rest: C) => {
    try {
      await keys.ready(tokenIn(event));
    } catch (error) {
      if (!(error instanceof SharedKeyUnavailableError)) throw error;
      console.error(JSON.stringify({ level: "ERROR", message: error.message }));
      return {
        statusCode: 503,
        headers: { "content-type": "application/json", "retry-after": "1" },
        body: JSON.stringify({ error: { code: "unavailable", message: "signing key not available yet" } }),
      };
    }
    return handler(event, ...rest);
  };
}
