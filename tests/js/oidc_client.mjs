// A relying party built on panva's openid-client, driven step by step by
// tests/oauth/test_openid_client.py (Python plays the browser, this script the client).
//
//   node oidc_client.mjs STEP '{"issuer": ..., "client_id": ..., ...}'
//
// STEP: authorize  -> {url, code_verifier, state, nonce}   (PKCE S256, extra params allowed)
//       callback   -> {id_token, claims, amr, acr, userinfo} or {error, error_description, code}
//                     (with "required_acr": refused unless the ID token's acr is that value)
//       logout     -> {url}                                 (RP-Initiated Logout 1.0)
// Prints one JSON object; exits 0 even when the library refused (the test reads why).
import * as client from "openid-client";

const [step, raw] = process.argv.slice(2);
const input = JSON.parse(raw);

const config = await client.discovery(new URL(input.issuer), input.client_id, undefined, client.None(), {
  execute: [client.allowInsecureRequests], // the test server listens on plain http://127.0.0.1
});

async function authorize() {
  const code_verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: input.redirect_uri,
    scope: input.scope ?? "openid profile email",
    code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
    code_challenge_method: "S256",
    state,
    nonce,
    ...(input.extra ?? {}),
  });
  return { url: url.href, code_verifier, state, nonce };
}

async function callback() {
  try {
    const tokens = await client.authorizationCodeGrant(config, new URL(input.callback_url), {
      pkceCodeVerifier: input.code_verifier,
      expectedState: input.state,
      expectedNonce: input.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    // What a relying party that asked for acr_values=mfa checks: how the user signed in.
    if (input.required_acr && claims.acr !== input.required_acr) {
      return { error: "acr_not_met", error_description: `acr is ${claims.acr}`, code: null, message: "" };
    }
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    return { id_token: tokens.id_token, claims, amr: claims.amr ?? null, acr: claims.acr ?? null, userinfo };
  } catch (error) {
    return { error: error.error ?? null, error_description: error.error_description ?? null,
             code: error.code ?? null, message: error.message };
  }
}

function logout() {
  const url = client.buildEndSessionUrl(config, {
    id_token_hint: input.id_token,
    post_logout_redirect_uri: input.post_logout_redirect_uri,
    state: input.state,
  });
  return { url: url.href };
}

const steps = { authorize, callback, logout };
if (!steps[step]) {
  console.error(`unknown step ${step}`);
  process.exit(2);
}
console.log(JSON.stringify(await steps[step]()));
