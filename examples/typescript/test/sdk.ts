/**
 * The TypeScript SDK's SessionManager and AgentBase: `@signalwire/sdk` where it can be
 * loaded (`SIGNALWIRE_SDK` names its entry file, else the package by name), otherwise
 * a stand-in that signs and checks as the SDK 2.0.5's SessionManager does.
 */

import { createHmac, randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";
import type { TokenManager } from "../src/sharedKey.ts";

export interface SdkSessionManager extends TokenManager {
  generateToken(functionName: string, callId: string): string;
  validateToolToken(functionName: string, token: string, callId: string): boolean;
}

export interface Sdk {
  source: string;
  SessionManager: new (tokenExpirySecs?: number, secretKey?: string) => SdkSessionManager;
  /** Only the real SDK has it. */
  AgentBase?: new (options: Record<string, unknown>) => object;
  ServerlessAdapter?: new (platform: string) => {
    handleRequest(app: unknown, event: unknown): Promise<{ statusCode: number; body: string }>;
  };
}

/**
 * Not the SDK: the behaviour of its SessionManager that the helper relies on. It signs
 * and checks with the public `secretKey` (random when none is given), base64url without
 * padding, a 32-hex nonce, exactly five dot-separated parts (so no dots in a call id).
 */
class StandInSessionManager implements SdkSessionManager {
  tokenExpirySecs: number;
  secretKey: string;

  constructor(tokenExpirySecs = 900, secretKey?: string) {
    this.tokenExpirySecs = tokenExpirySecs;
    this.secretKey = secretKey ?? randomBytes(32).toString("hex");
  }

  private sign(message: string): string {
    return createHmac("sha256", this.secretKey).update(message).digest("hex");
  }

  generateToken(functionName: string, callId: string): string {
    const expiry = Math.floor(Date.now() / 1000) + this.tokenExpirySecs;
    const nonce = randomBytes(16).toString("hex");
    const signature = this.sign(`${callId}:${functionName}:${expiry}:${nonce}`);
    return Buffer.from(`${callId}.${functionName}.${expiry}.${nonce}.${signature}`).toString("base64url");
  }

  validateToken(callId: string, functionName: string, token: string): boolean {
    const parts = Buffer.from(token, "base64url").toString().split(".");
    if (parts.length !== 5 || !callId) return false;
    const [tokenCallId, tokenFunction, expiry, nonce, signature] = parts as [string, string, string, string, string];
    return (
      tokenFunction === functionName &&
      Number.parseInt(expiry, 10) > Math.floor(Date.now() / 1000) &&
      signature === this.sign(`${tokenCallId}:${tokenFunction}:${expiry}:${nonce}`) &&
      tokenCallId === callId
    );
  }

  validateToolToken(functionName: string, token: string, callId: string): boolean {
    return this.validateToken(callId, functionName, token);
  }
}

export async function loadSdk(): Promise<Sdk> {
  const where = process.env["SIGNALWIRE_SDK"];
  const specifier = where ? pathToFileURL(where).href : "@signalwire/sdk";
  try {
    const sdk = (await import(specifier)) as Omit<Sdk, "source">;
    return { ...sdk, source: `@signalwire/sdk (${where ?? "installed"})` };
  } catch (error) {
    if (where) throw error; // named, so it must load
    return { source: "a stand-in (@signalwire/sdk is not installed)", SessionManager: StandInSessionManager };
  }
}
