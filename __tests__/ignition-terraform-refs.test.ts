/** The helper that stands in for Terraform when synthesized user data is checked offline. */
import { gunzipSync } from "node:zlib";
import { pemBase64, REF_PLACEHOLDERS, resolveTerraformRefs } from "./support/terraform-refs";

describe("resolveTerraformRefs", () => {
  it.each([
    ['${coalesce(var.kubeadm_bootstrap_token, join(".", [random_string.t-id.result, random_password.t-secret.result]))}', REF_PLACEHOLDERS.bootstrapToken],
    ["${var.kubeadm_bootstrap_token}", REF_PLACEHOLDERS.bootstrapToken],
    ["${random_string.control-plane_bootstrap-token-id_1.result}", REF_PLACEHOLDERS.bootstrapTokenId],
    ["${random_password.control-plane_bootstrap-token-secret_2.result}", REF_PLACEHOLDERS.bootstrapTokenSecret],
    ["${base64encode(tls_private_key.ca.private_key_pem)}", REF_PLACEHOLDERS.base64],
    ["${metal_device.x.id}", REF_PLACEHOLDERS.other],
  ])("%s -> a value of the right shape", (reference, expected) => {
    expect(resolveTerraformRefs(`a${reference}b`).text).toBe(`a${expected}b`);
  });

  it("the placeholders have the shapes kubeadm and base64 decoders demand", () => {
    expect(REF_PLACEHOLDERS.bootstrapToken).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    expect(`${REF_PLACEHOLDERS.bootstrapTokenId}.${REF_PLACEHOLDERS.bootstrapTokenSecret}`).toBe(REF_PLACEHOLDERS.bootstrapToken);
    expect(Buffer.from(REF_PLACEHOLDERS.base64, "base64").toString("base64")).toBe(REF_PLACEHOLDERS.base64);
    expect(Buffer.from(REF_PLACEHOLDERS.base64, "base64").toString()).toMatch(/^-----BEGIN [A-Z ]+-----\n[\s\S]*-----END [A-Z ]+-----\n$/);
  });

  it("undoes Terraform's escapes and handles braces and quotes inside expressions", () => {
    const { text, expressions } = resolveTerraformRefs('x $${HOME} %%{if} ${join(".", ["}", random_string.token-id.result])} y');
    expect(text).toBe(`x \${HOME} %{if} ${REF_PLACEHOLDERS.bootstrapToken} y`);
    expect(expressions).toEqual(['join(".", ["}", random_string.token-id.result])']);
  });

  it("refuses what it cannot evaluate instead of skipping it", () => {
    expect(() => resolveTerraformRefs("a %{ if true }b%{ endif }")).toThrow("Terraform template directive");
    expect(() => resolveTerraformRefs("a ${unterminated")).toThrow("unterminated Terraform expression");
  });

  it("sizes base64 placeholders when asked (for user data size estimates)", () => {
    expect(Buffer.from(pemBase64(1024), "base64").length).toBe(1024);
    expect(resolveTerraformRefs("${base64encode(x)}", { pemBytes: 1024 }).text).toBe(pemBase64(1024));
    expect(gunzipSync(Buffer.from(resolveTerraformRefs("${base64gzip(x)}", { pemBytes: 1024 }).text, "base64")).toString("base64")).toBe(pemBase64(1024));
  });

  it("base64gzip() yields gzip'd PEM text, base64-encoded, as Terraform does", () => {
    const text = resolveTerraformRefs("${base64gzip(tls_private_key.ca.private_key_pem)}").text;
    expect(text).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(gunzipSync(Buffer.from(text, "base64")).toString()).toBe(Buffer.from(REF_PLACEHOLDERS.base64, "base64").toString());
  });
});
