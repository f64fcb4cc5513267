/**
 * Checks Terraform JSON bodies against a provider schema in
 * `terraform providers schema -json` form: unknown attributes, computed-only
 * attributes set by config, and missing required attributes are problems.
 */
export interface SchemaBlock {
  attributes?: Record<string, { type: unknown; required?: boolean; optional?: boolean; computed?: boolean }>;
  block_types?: Record<string, { nesting_mode: string; block: SchemaBlock; min_items?: number; max_items?: number }>;
}

export interface ProviderSchema {
  provider: { block: SchemaBlock };
  resource_schemas: Record<string, { block: SchemaBlock }>;
  data_source_schemas: Record<string, { block: SchemaBlock }>;
}

/** Terraform meta-arguments, valid on every resource and data source. */
const META_ARGUMENTS = new Set(["//", "count", "for_each", "depends_on", "lifecycle", "provider", "provisioner", "connection"]);

export function checkBody(where: string, block: SchemaBlock, body: Record<string, unknown>, topLevel = true): string[] {
  const problems: string[] = [];
  const attributes = block.attributes ?? {};
  const blockTypes = block.block_types ?? {};
  for (const [key, value] of Object.entries(body)) {
    if (topLevel && META_ARGUMENTS.has(key)) continue;
    const attribute = attributes[key];
    if (attribute) {
      if (attribute.computed && !attribute.optional && !attribute.required) problems.push(`${where}: sets computed-only attribute ${key}`);
      continue;
    }
    const nested = blockTypes[key];
    if (!nested) {
      problems.push(`${where}: unknown attribute or block ${key}`);
      continue;
    }
    const items = Array.isArray(value) ? value : [value];
    if (nested.max_items !== undefined && nested.max_items > 0 && items.length > nested.max_items) {
      problems.push(`${where}: block ${key} has ${items.length} items, at most ${nested.max_items} allowed`);
    }
    items.forEach((item, i) => problems.push(...checkBody(`${where}.${key}[${i}]`, nested.block, item as Record<string, unknown>, false)));
  }
  for (const [key, attribute] of Object.entries(attributes)) {
    if (attribute.required && !(key in body)) problems.push(`${where}: required attribute ${key} is not set`);
  }
  for (const [key, nested] of Object.entries(blockTypes)) {
    if ((nested.min_items ?? 0) > 0 && !(key in body)) problems.push(`${where}: required block ${key} is missing`);
  }
  return problems;
}
