/**
 * The subset of the Ignition config spec 3.3.0 this project writes. Flatcar reads
 * 3.3.0 and Debian's ignition-validate (2.14) checks it.
 * Field names follow https://coreos.github.io/ignition/configuration-v3_3/
 */
export const IGNITION_SPEC_VERSION = "3.3.0";

export interface IgnitionResource {
  /** `data:` URL or https URL. */
  readonly source: string;
  readonly compression?: "gzip";
  readonly verification?: { readonly hash: string };
}

export interface IgnitionFile {
  readonly path: string;
  readonly mode?: number;
  readonly overwrite?: boolean;
  readonly contents?: IgnitionResource;
  readonly user?: { readonly name: string };
  readonly group?: { readonly name: string };
}

export interface IgnitionDirectory {
  readonly path: string;
  readonly mode?: number;
  readonly overwrite?: boolean;
}

export interface IgnitionLink {
  readonly path: string;
  readonly target: string;
  readonly hard?: boolean;
  readonly overwrite?: boolean;
}

export interface IgnitionDropin {
  readonly name: string;
  readonly contents: string;
}

export interface IgnitionUnit {
  readonly name: string;
  readonly enabled?: boolean;
  readonly mask?: boolean;
  readonly contents?: string;
  readonly dropins?: readonly IgnitionDropin[];
}

export interface IgnitionConfig {
  readonly ignition: {
    readonly version: typeof IGNITION_SPEC_VERSION;
    /** Configs Ignition fetches and merges with this one (ignition/user-data.ts). */
    readonly config?: { readonly merge?: readonly IgnitionResource[] };
  };
  readonly passwd?: {
    readonly users?: readonly { readonly name: string; readonly sshAuthorizedKeys?: readonly string[] }[];
  };
  readonly storage?: {
    readonly files?: readonly IgnitionFile[];
    readonly directories?: readonly IgnitionDirectory[];
    readonly links?: readonly IgnitionLink[];
  };
  readonly systemd?: { readonly units?: readonly IgnitionUnit[] };
}

/** Inline file contents as a base64 `data:` URL (safe for any bytes, and for Terraform references inside). */
export function dataUrl(text: string): string {
  return `data:;base64,${Buffer.from(text, "utf8").toString("base64")}`;
}
