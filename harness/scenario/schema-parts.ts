/** Building blocks of the scenario schema: numbers, expressions, conditions, kernels, functions. */
import { z } from 'zod';
import { ExprError, parseExpr } from './expr.ts';
import { OBSERVED_VALUES } from '../ntb/capability-table.ts';

export const variantName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'variant names are lower-case letters, digits, ".", "_" and "-" (they become cell ids)');

export const u8 = z.number().int().min(0).max(0xff);
export const u16 = z.number().int().min(0).max(0xffff);
export const barNumber = z.number().int().min(0).max(5);

/** An expectation expression (expr.ts); YAML numbers and booleans are accepted and read as their text. */
export const expression = z
  .union([z.string(), z.number().int(), z.boolean()])
  .transform((value) => String(value))
  .superRefine((text, ctx) => {
    try {
      parseExpr(text);
    } catch (error) {
      if (!(error instanceof ExprError)) throw error;
      ctx.addIssue({ code: 'custom', message: `bad expression: ${error.message}`, params: { offset: error.offset } });
    }
  });

const capabilityFlags = z.record(z.string().regex(/^[a-z0-9_]+$/, 'capability names are snake_case'), z.boolean());

/** A condition on the cell's probed capabilities (and on which guest observed the value). */
export const condition = z
  .strictObject({
    on: z.enum(['ep', 'host']).optional().describe('the guest whose observation is judged (the receiver, for doorbells)'),
    ep: capabilityFlags.optional().describe('capabilities of the EP kernel, e.g. {vntb_zero_based_vectors: false}'),
    host: capabilityFlags.optional().describe('capabilities of the host kernel'),
  })
  .describe('all listed conditions must hold');
export type Condition = z.output<typeof condition>;

export const kernelSource = z.union([
  z
    .string()
    .regex(/^debian:[0-9]+\.[0-9]+(\.[0-9]+)?(=[0-9][A-Za-z0-9.+~:-]*)?$/, 'a source string is "debian:X.Y", "debian:X.Y.Z" or "debian:X.Y=<Debian version>", e.g. debian:7.2'),
  z.strictObject({ git: z.string().min(1).describe('repository path or URL'), ref: z.string().min(1) }),
  z.strictObject({ path: z.string().min(1).describe('a local kernel tree, used as is') }),
]);

export const kernelVariant = z.strictObject({
  source: kernelSource.default('debian:6.12'),
  patches: z.array(z.string().min(1)).default([]).describe('patch-set directories under kernel-patches/ or absolute paths'),
  fragments: z.array(z.string().min(1)).default([]).describe('extra config fragments'),
});

export const guestTopology = (arch: 'arm64' | 'x86_64') =>
  z.strictObject({
    arch: z.enum(['arm64', 'x86_64']).default(arch),
    memory: z.number().int().min(128).max(2048).default(512).describe('guest RAM in MiB (keep it below the 32-bit hole)'),
    packages: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'Debian package names'))
      .default([])
      .describe("extra Debian packages in this guest's image, resolved for its arch with their libraries (e.g. iperf3, ethtool)"),
  });

const configfsValue = z.union([z.number().int(), z.string()]);

export const vntbFunction = z.strictObject({
  type: z.literal('pci-epf-vntb'),
  vendorid: u16.default(0x1957),
  deviceid: u16.default(0x0809),
  baseclass_code: u8.default(0x05),
  subclass_code: u8.default(0x00),
  progif_code: u8.default(0x00),
  db_count: z.number().int().min(1).max(32).default(16).describe('Ne'),
  spad_count: z.number().int().min(0).max(64).default(8),
  mws: z.array(z.number().int().positive()).min(1).max(4).default([0x100000]).describe('memory window sizes; num_mws is their count'),
  ctrl_bar: barNumber.optional().describe('written only where the kernel has the attribute'),
  db_bar: barNumber.optional(),
  mw1_bar: barNumber.optional(),
  mw2_bar: barNumber.optional(),
  mw3_bar: barNumber.optional(),
  mw4_bar: barNumber.optional(),
  vbus_number: u8.default(0x10),
  vntb_vid: u16.default(0x1957),
  vntb_pid: u16.default(0x080a),
  attributes: z.record(z.string().regex(/^[a-z0-9_]+$/), configfsValue).default({}).describe('more attributes for the vntb directory, written as given'),
});

export const epfTestFunction = z.strictObject({
  type: z.literal('pci-epf-test'),
  vendorid: u16.default(0x104c),
  deviceid: u16.default(0xb500),
  baseclass_code: u8.optional(),
  subclass_code: u8.optional(),
  msi_interrupts: z.number().int().min(1).max(32).default(16),
  msix_interrupts: z.number().int().min(0).max(2048).default(0),
  attributes: z.record(z.string().regex(/^[a-z0-9_]+$/), configfsValue).default({}),
});

/**
 * pci-epf-ntb (Documentation/PCI/endpoint/pci-ntb-howto.rst): one function on two controllers, an NTB
 * between the hosts behind them. 104c:b00d class 0x0500 is what ntb_hw_epf binds with its J721E map.
 */
export const epfNtbFunction = z.strictObject({
  type: z.literal('pci-epf-ntb'),
  vendorid: u16.default(0x104c),
  deviceid: u16.default(0xb00d),
  baseclass_code: u8.default(0x05),
  subclass_code: u8.default(0x00),
  progif_code: u8.default(0x00),
  db_count: z.number().int().min(1).max(32).default(4).describe('doorbells per host (the driver\'s default is 4)'),
  spad_count: z.number().int().min(0).max(64).default(64),
  mws: z.array(z.number().int().positive()).min(1).max(4).default([0x100000]).describe('memory window sizes; num_mws is their count'),
  attributes: z.record(z.string().regex(/^[a-z0-9_]+$/), configfsValue).default({}).describe('more attributes for the pci_epf_ntb.0 directory, written as given'),
});

export const epfFunction = z.discriminatedUnion('type', [vntbFunction, epfTestFunction, epfNtbFunction]);
export type EpfNtbFunction = z.output<typeof epfNtbFunction>;
export type EpfFunction = z.output<typeof epfFunction>;
export type VntbFunction = z.output<typeof vntbFunction>;
export type EpfTestFunction = z.output<typeof epfTestFunction>;

export const probe = z.union([
  z.strictObject({ kallsyms: z.array(z.string().min(1)).min(1) }),
  z.strictObject({ module_string: z.strictObject({ module: z.string().min(1), strings: z.array(z.string().min(1)).min(1) }) }),
  z.strictObject({ config: z.string().regex(/^CONFIG_[A-Z0-9_]+$/), symbol: z.string().optional() }),
  z.strictObject({ path: z.array(z.string().startsWith('/')).min(1) }),
  z.strictObject({ any: z.array(z.string()).min(1) }),
  z.strictObject({ all: z.array(z.string()).min(1) }),
  z
    .strictObject({ observed: z.strictObject({ value: z.enum(OBSERVED_VALUES), when_true: expression, when_false: expression }) })
    .describe('decided in the cell from a value read through ntb_tool: true/false when it equals when_true/when_false (N, Ne, Nh)'),
]);
