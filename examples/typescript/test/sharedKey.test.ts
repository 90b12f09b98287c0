/**
 * The helper against the TypeScript SDK's SessionManager, with Secrets Manager served by
 * a moto server on 127.0.0.1, and the session API's Python layer minting and checking.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import {
  SharedSigningKey,
  shareSigningKey,
  signedWith,
  tokenIn,
  withSharedKey,
} from "../src/sharedKey.ts";
import { loadSdk, type Sdk } from "./sdk.ts";
import { motoMissing, startMoto, type Moto } from "./moto.ts";

const PYTHON = process.env["PYTHON"] ?? fileURLToPath(new URL("../../../.venv/bin/python", import.meta.url));
const pythonMissing = existsSync(PYTHON) ? false : `no Python at ${PYTHON}: run \`make .venv/.installed-test\``;

const PREVIOUS_KEY = "previous-key-0123456789abcdefghijklmnopqrstuv";
const CURRENT_KEY = "current-key-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const OTHER_KEY = "not-the-shared-key-0123456789abcdefghijklmnop";
const CALL_ID = "e2c4a6b8-1d3f-4a5b-9c7d-0e1f2a3b4c5d";
const FUNCTION = "lookup_order";

let moto: Moto;
let sdk: Sdk;
let admin: SecretsManagerClient;
let secrets = 0;

/** A secret of its own for each test: PREVIOUS_KEY, then rotated to CURRENT_KEY. */
async function rotatedSecret(): Promise<string> {
  const name = `signing-key-${++secrets}`;
  await admin.send(new CreateSecretCommand({ Name: name, SecretString: PREVIOUS_KEY }));
  await admin.send(new PutSecretValueCommand({ SecretId: name, SecretString: CURRENT_KEY }));
  return name;
}

/** A client that counts its GetSecretValue calls, by version stage. */
function countingClient(): { client: SecretsManagerClient; stages: string[] } {
  const stages: string[] = [];
  const client = new SecretsManagerClient({});
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === "GetSecretValueCommand") {
        stages.push(String((args.input as { VersionStage?: string }).VersionStage));
      }
      return next(args);
    },
    { step: "initialize" },
  );
  return { client, stages };
}

/** Run the session API's Python layer (`session_manager`) on `script`, with `env`. */
function python(script: string, env: Record<string, string>): string {
  return execFileSync(PYTHON, ["-c", script], {
    env: { ...process.env, ...env },
    encoding: "utf8",
  }).trim();
}

/** A token as the session API mints it (POST /sessions/{id}/tokens): padded base64url. */
function mintedByTheApi(key: string, callId = CALL_ID, functionName = FUNCTION): string {
  return python(
    "import os; from session_manager import SessionManager\n" +
      "sm = SessionManager(secret_key=os.environ['KEY'], table_name='unused')\n" +
      "print(sm.generate_token(os.environ['FUNCTION'], os.environ['CALL_ID']))",
    { KEY: key, FUNCTION: functionName, CALL_ID: callId },
  );
}

/** A token as an agent of the TypeScript SDK mints it with `key`. */
function mintedByAnAgent(key: string, callId = CALL_ID, functionName = FUNCTION, lifetime = 900): string {
  return new sdk.SessionManager(lifetime, key).generateToken(functionName, callId);
}

const skip = motoMissing || pythonMissing;

describe("sharing the signing key with a TypeScript agent", { skip }, () => {
  before(async () => {
    moto = await startMoto();
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      AWS_REGION: "us-east-1",
      AWS_DEFAULT_REGION: "us-east-1",
    });
    delete process.env["AWS_PROFILE"];
    admin = new SecretsManagerClient({});
    sdk = await loadSdk();
    console.log(`# SessionManager from ${sdk.source}`);
  });

  after(async () => {
    await moto?.stop();
  });

  test("a token the API minted with AWSCURRENT validates in the agent's SessionManager", async () => {
    const secretId = await rotatedSecret();
    const manager = new sdk.SessionManager(3600);
    const token = mintedByTheApi(CURRENT_KEY);
    assert.equal(manager.validateToken(CALL_ID, FUNCTION, token), false, "the SDK's random key refuses it");

    const keys = new SharedSigningKey({ secretId }); // the client from the environment
    keys.install(manager);
    await keys.ready();

    assert.equal(manager.validateToken(CALL_ID, FUNCTION, token), true);
    assert.equal(manager.validateToolToken(FUNCTION, token, CALL_ID), true);
    assert.equal(manager.secretKey, CURRENT_KEY, "the agent signs with AWSCURRENT");
  });

  test("a token signed with AWSPREVIOUS validates while the rotation settles", async () => {
    const secretId = await rotatedSecret();
    const manager = new sdk.SessionManager(3600);
    const keys = new SharedSigningKey({ secretId });
    keys.install(manager);
    await keys.ready();

    for (const token of [mintedByTheApi(PREVIOUS_KEY), mintedByAnAgent(PREVIOUS_KEY)]) {
      assert.equal(new sdk.SessionManager(3600, CURRENT_KEY).validateToken(CALL_ID, FUNCTION, token), false);
      assert.equal(manager.validateToken(CALL_ID, FUNCTION, token), true);
    }
    assert.equal(manager.secretKey, CURRENT_KEY, "the previous key was lent for one check only");
  });

  test("anything else is refused, with either key", async () => {
    const secretId = await rotatedSecret();
    const manager = new sdk.SessionManager(3600);
    shareSigningKeyInto(manager, secretId);
    await sharedKeys.get(manager)!.ready();

    const refused: Record<string, [string, string, string]> = {
      "another key": [CALL_ID, FUNCTION, mintedByTheApi(OTHER_KEY)],
      "another call": ["another-call", FUNCTION, mintedByTheApi(CURRENT_KEY)],
      "another call, previous key": ["another-call", FUNCTION, mintedByTheApi(PREVIOUS_KEY)],
      "another function": [CALL_ID, "refund_order", mintedByTheApi(CURRENT_KEY)],
      "another function, previous key": [CALL_ID, "refund_order", mintedByAnAgent(PREVIOUS_KEY)],
      "expired": [CALL_ID, FUNCTION, mintedByAnAgent(CURRENT_KEY, CALL_ID, FUNCTION, -1)],
      "expired, previous key": [CALL_ID, FUNCTION, mintedByAnAgent(PREVIOUS_KEY, CALL_ID, FUNCTION, -1)],
      "no call id": ["", FUNCTION, mintedByTheApi(CURRENT_KEY)],
      "not a token": [CALL_ID, FUNCTION, "bm90IGEgdG9rZW4"],
    };
    for (const [what, [callId, functionName, token]] of Object.entries(refused)) {
      assert.equal(manager.validateToken(callId, functionName, token), false, what);
    }
  });

  test("the secret is read once per instance, and again after SECRET_CACHE_SECS", async () => {
    const secretId = await rotatedSecret();
    const { client, stages } = countingClient();
    let now = 1_000_000;
    const manager = new sdk.SessionManager(3600);
    const keys = new SharedSigningKey({ secretId, client, cacheSecs: 300, now: () => now });
    keys.install(manager);
    const token = mintedByTheApi(CURRENT_KEY);
    const handler = withSharedKey(keys, async (event: { queryStringParameters: Record<string, string> }) =>
      manager.validateToken(CALL_ID, FUNCTION, event.queryStringParameters["__token"]!),
    );

    // Ten requests at once on a cold instance, then ten more: one fetch of each version.
    const cold = await Promise.all(Array.from({ length: 10 }, () => handler({ queryStringParameters: { __token: token } })));
    now += 299_000;
    for (let i = 0; i < 10; i++) assert.equal(await handler({ queryStringParameters: { __token: token } }), true);
    assert.deepEqual(cold, Array(10).fill(true));
    assert.deepEqual(stages.sort(), ["AWSCURRENT", "AWSPREVIOUS"]);

    now += 1_000; // the cache period is over
    await keys.ready();
    assert.equal(stages.length, 4);
  });

  test("a token signed with a key this instance has not seen makes it look again, at most every 10 s", async () => {
    const secretId = await rotatedSecret();
    const { client, stages } = countingClient();
    let now = 1_000_000;
    const manager = new sdk.SessionManager(3600);
    const keys = new SharedSigningKey({ secretId, client, now: () => now });
    keys.install(manager);
    await keys.ready();
    assert.equal(stages.length, 2);

    // Rotated now; another instance (or the API) signs with the new key at once.
    const newest = "newest-key-0123456789abcdefghijklmnopqrstuvwxyz";
    await admin.send(new PutSecretValueCommand({ SecretId: secretId, SecretString: newest }));
    const token = mintedByAnAgent(newest);
    now += 1_000; // well inside the cache period

    await keys.ready(token);
    assert.equal(stages.length, 4);
    assert.equal(manager.validateToken(CALL_ID, FUNCTION, token), true);
    assert.equal(manager.validateToken(CALL_ID, FUNCTION, mintedByAnAgent(CURRENT_KEY)), true, "now AWSPREVIOUS");

    // Forged tokens: no look before 10 s have passed since the last one, then one.
    const forged = mintedByAnAgent(OTHER_KEY);
    await keys.ready(forged);
    now += 9_000;
    await keys.ready(forged);
    assert.equal(stages.length, 4);
    now += 1_000;
    await keys.ready(forged);
    await keys.ready(forged);
    assert.equal(stages.length, 6);
    assert.equal(manager.validateToken(CALL_ID, FUNCTION, forged), false);
  });

  test("a token the agent mints with the shared key validates in the session API's layer", async () => {
    const secretId = await rotatedSecret();
    const manager = new sdk.SessionManager(3600);
    const keys = new SharedSigningKey({ secretId });
    keys.install(manager);
    await keys.ready();
    const token = manager.generateToken(FUNCTION, CALL_ID);

    // The layer reads the same secret from the moto server (AWS_ENDPOINT_URL).
    const answer = python(
      "import os; from session_manager import SessionManager\n" +
        "sm = SessionManager(secret_id=os.environ['SECRET_ID'], table_name='unused')\n" +
        "print(sm.validate_token(os.environ['CALL_ID'], os.environ['FUNCTION'], os.environ['TOKEN']),\n" +
        "      sm.validate_token('another-call', os.environ['FUNCTION'], os.environ['TOKEN']))",
      { SECRET_ID: secretId, CALL_ID, FUNCTION, TOKEN: token },
    );
    assert.equal(answer, "True False");
  });

  test("no key yet and Secrets Manager unreachable: 503 with Retry-After, the handler not run", async () => {
    // Nothing listens on the port moto had: a refused connection, fast.
    const down = `http://127.0.0.1:${await closedPort()}`;
    const keys = new SharedSigningKey({ secretId: "signing-key", client: new SecretsManagerClient({ endpoint: down, maxAttempts: 1 }) });
    let ran = false;
    const handler = withSharedKey(keys, async () => {
      ran = true;
      return { statusCode: 200 };
    });

    const response = await handler({});

    assert.equal(ran, false);
    assert.equal(response.statusCode, 503);
    assert.equal((response as { headers: Record<string, string> }).headers["retry-after"], "1");
  });

  test("a cached key outlives an outage of Secrets Manager", async () => {
    const secretId = await rotatedSecret();
    let now = 1_000_000;
    let downPort: number | undefined;
    const client = new SecretsManagerClient({ maxAttempts: 1 });
    client.middlewareStack.add(
      (next) => async (args) => {
        // Outage: the request goes to a port nothing listens on.
        if (downPort !== undefined) (args.request as { port?: number }).port = downPort;
        return next(args);
      },
      { step: "finalizeRequest" },
    );
    const manager = new sdk.SessionManager(3600);
    const keys = new SharedSigningKey({ secretId, client, now: () => now });
    keys.install(manager);
    await keys.ready();

    downPort = await closedPort();
    now += 600_000;
    await keys.ready(mintedByTheApi(OTHER_KEY)); // no answer: the cached keys stay

    assert.equal(manager.secretKey, CURRENT_KEY);

    assert.equal(manager.validateToken(CALL_ID, FUNCTION, mintedByTheApi(CURRENT_KEY)), true);
    assert.equal(manager.validateToken(CALL_ID, FUNCTION, mintedByTheApi(PREVIOUS_KEY)), true);
  });

  test("a secret too short to be a key is refused", async () => {
    await admin.send(new CreateSecretCommand({ Name: "short-key", SecretString: "too-short" }));
    const keys = new SharedSigningKey({ secretId: "short-key" });
    await assert.rejects(keys.ready(), { name: "SharedKeyConfigError", message: /at least 32 characters/ });
  });

  test("an AgentBase's secure tool runs for the API's token and refuses a forged one", async (t) => {
    if (!sdk.AgentBase || !sdk.ServerlessAdapter) {
      t.skip("needs @signalwire/sdk itself (set SIGNALWIRE_SDK to its dist/index.js)");
      return;
    }
    const secretId = await rotatedSecret();
    const agent = new sdk.AgentBase({ name: "support", route: "/", basicAuth: ["user", "pass"] });
    (agent as { defineTool(options: Record<string, unknown>): void }).defineTool({
      name: FUNCTION,
      description: "Look up an order.",
      parameters: { type: "object", properties: {} },
      secure: true,
      handler: () => ({ response: "order 42 ships today" }),
    });
    const keys = shareSigningKey(agent, { secretId });
    const adapter = new sdk.ServerlessAdapter("lambda");
    const router = (agent as { asRouter(): unknown }).asRouter();
    const handler = withSharedKey(keys, (event: object) => adapter.handleRequest(router, event));
    const call = async (token: string) => {
      const response = await handler({
        httpMethod: "POST",
        path: "/swaig",
        headers: {
          host: "agent.example.com",
          "content-type": "application/json",
          authorization: `Basic ${Buffer.from("user:pass").toString("base64")}`,
        },
        queryStringParameters: { __token: token },
        body: JSON.stringify({ function: FUNCTION, call_id: CALL_ID, argument: {} }),
      });
      return JSON.parse((response as { body: string }).body) as { response: string };
    };

    assert.equal((await call(mintedByTheApi(CURRENT_KEY))).response, "order 42 ships today");
    assert.equal((await call(mintedByTheApi(PREVIOUS_KEY))).response, "order 42 ships today");
    assert.match((await call(mintedByTheApi(OTHER_KEY))).response, /invalid or expired/);
  });
});

describe("reading a token", () => {
  test("from the query string, where the SDK looks for it", () => {
    assert.equal(tokenIn({ queryStringParameters: { __token: "a" } }), "a");
    assert.equal(tokenIn({ queryStringParameters: { token: "b" } }), "b");
    assert.equal(tokenIn({ multiValueQueryStringParameters: { __token: ["c"] } }), "c");
    assert.equal(tokenIn({ queryStringParameters: null }), undefined);
    assert.equal(tokenIn(undefined), undefined);
  });

  test("whose call id holds dots, signed or not with a key", () => {
    const token = Buffer.from(
      "root.2.f.1.n." + createHmacHex(CURRENT_KEY, "root.2:f:1:n"),
    ).toString("base64url");
    assert.equal(signedWith(token, CURRENT_KEY), true);
    assert.equal(signedWith(token + "=", CURRENT_KEY), true, "padded too");
    assert.equal(signedWith(token, OTHER_KEY), false);
    assert.equal(signedWith("", CURRENT_KEY), false);
  });
});

// --- helpers used above -------------------------------------------------------------

const sharedKeys = new Map<object, SharedSigningKey>();

/** shareSigningKey as an agent uses it, on a bare SessionManager in an agent-shaped object. */
function shareSigningKeyInto(manager: object, secretId: string): void {
  sharedKeys.set(manager, shareSigningKey({ sessionManager: manager }, { secretId }));
}

function createHmacHex(key: string, message: string): string {
  return createHmac("sha256", key).update(message).digest("hex");
}

async function closedPort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
