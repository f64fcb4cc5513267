/** The helper that stands in for Terraform when synthesized user data is checked offline. */
import { gunzipSync } from "node:zlib";
import { pemBase64, REF_PLACEHOLDERS, resolveTerraformRefs } from "./support/terraform-refs";

describe("resolveTerraformRefs", () => {
  it.each([
    ["${base64encode(tls_private_key.ca.private_key_pem)}", REF_PLACEHOLDERS.base64],
    ["${metal_device.x.id}", REF_PLACEHOLDERS.other],
  ])("%s -> a value of the right shape", (reference, expected) => {
    expect(resolveTerraformRefs(`a${reference}b`).text).toBe(`a${expected}b`);
  });

  it("the placeholders have the shapes base64 decoders demand", () => {
    expect(Buffer.from(REF_PLACEHOLDERS.base64, "base64").toString("base64")).toBe(REF_PLACEHOLDERS.base64);
    expect(Buffer.from(REF_PLACEHOLDERS.base64, "base64").toString()).toMatch(/^-----BEGIN [A-Z ]+-----\n[\s\S]*-----END [A-Z ]+-----\n$/);
  });

  it("undoes Terraform's escapes and handles braces and quotes inside expressions", () => {
    const { text, expressions } = resolveTerraformRefs('x $${HOME} %%{if} ${join(".", ["}", metal_device.a.id])} y');
    expect(text).toBe(`x \${HOME} %{if} ${REF_PLACEHOLDERS.other} y`);
    expect(expressions).toEqual(['join(".", ["}", metal_device.a.id])']);
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
