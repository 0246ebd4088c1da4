import { generateSigningJwk } from "../dispatcher/keys";
import { harnessCommand } from "./_command";

export default harnessCommand({
  name: "keygen",
  description:
    "Print a new private Ed25519 signing key (JWK) for CAPABILITY_SIGNING_KEY; its kid is its thumbprint",
  args: {},
  async run() {
    process.stdout.write(`${JSON.stringify(await generateSigningJwk())}\n`);
  },
});
