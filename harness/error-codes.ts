/**
 * The error-code catalogue: every code a HarnessError (or a failed command, harness/util/proc.ts) can
 * carry, with its kind and what to do about it. Codes are stable: scripts and CI may match on them.
 * docs/error-codes.md is generated from this table (`ntbh errors`), and test/unit/error-codes.test.ts
 * checks that every code used in harness/ is listed here and every listed code is used.
 */
import type { ErrorKind } from './errors.ts';

export interface ErrorCodeDoc {
  kind: ErrorKind;
  /** What happened and what to do, in one or two sentences. */
  doc: string;
}

export const errorCodes = {
  // Input: the command line, a scenario, a known-issues file, a bundle.
  BAD_OPTIONS: { kind: 'input', doc: 'Command-line options that do not go together (e.g. bisect without --good/--bad).' },
  BAD_VARIANT: { kind: 'input', doc: 'An unknown built-in kernel variant; `ntbh kernel build --help` lists them.' },
  BAD_KERNEL_SOURCE: { kind: 'input', doc: 'A kernel source that is none of debian:<ver>, git:<repo>@<ref>, path:<tree>.' },
  BAD_TIMEOUT_SCALE: { kind: 'input', doc: 'NTBH_TIMEOUT_SCALE (or a topology timeout_scale) is not a positive number.' },
  BAD_TOPOLOGY: { kind: 'input', doc: 'A scenario topology the link cannot build (e.g. host memory above the 2 GiB the link maps by physical address).' },
  BAD_SHARD: { kind: 'input', doc: '`--shard i/n` is not of the form 1 ≤ i ≤ n.' },
  BAD_RESULTS: { kind: 'input', doc: 'A results.json that is not a run result (report.html needs one written by `ntbh run`).' },
  SCENARIO_NOT_FOUND: { kind: 'input', doc: 'The scenario file does not exist or cannot be read.' },
  SCENARIO_INVALID: { kind: 'input', doc: 'The scenario does not match the schema; the message gives file:line:col and the rule.' },
  SCENARIO_EXPR: { kind: 'input', doc: 'An expression in the scenario (a mask, an expectation) does not parse or evaluate.' },
  SCENARIO_STEP_TYPE: { kind: 'input', doc: 'A step type no registry entry defines; `ntbh steps` lists them.' },
  NO_SUCH_CELL: { kind: 'input', doc: '`--cell` names no cell of the matrix; `ntbh matrix <scenario>` lists them.' },
  NO_SUCH_STEP: { kind: 'input', doc: "`ntbh step` names no step of the live pair's scenario." },
  FAULTS_UNSUPPORTED: { kind: 'input', doc: 'A fault-injection step on a topology whose relay cannot inject that fault.' },
  PAUSE_UNSUPPORTED: { kind: 'input', doc: 'A guest-stop step on a cell whose guests cannot be paused (no QMP, e.g. a fake or a live pair without it).' },
  NETDEV_NOT_UP: { kind: 'input', doc: 'An ntb_netdev traffic step ran before a netdev-up step brought the interfaces up.' },
  SOCKET_PATH_TOO_LONG: { kind: 'input', doc: 'A UNIX socket path over the 107-byte limit; use a shorter --results or TMPDIR.' },
  KNOWN_ISSUES_NOT_FOUND: { kind: 'input', doc: 'The known-issues file given to run/compare does not exist.' },
  KNOWN_ISSUES_INVALID: { kind: 'input', doc: 'The known-issues file does not match its schema (file:line:col in the message).' },
  RESULTS_NOT_FOUND: { kind: 'input', doc: 'A results directory or results.json given to compare/merge does not exist.' },
  RESULTS_INVALID: { kind: 'input', doc: 'A results.json that does not parse as a run result.' },
  NO_RESULTS: { kind: 'input', doc: 'A run directory without results.json (the run did not finish).' },
  NO_BUNDLE: { kind: 'input', doc: '`ntbh reproduce` was given a directory without a reproducer bundle.' },
  BUNDLE_VERSION: { kind: 'input', doc: 'The bundle was written by an incompatible bundle format version.' },
  NO_GUEST: { kind: 'input', doc: '`ntbh ssh` names a guest the run directory does not have (ep, host).' },
  NO_WIRE_TRACE: { kind: 'input', doc: '`ntbh wire` found no wire.ndjson in the run directory.' },
  NO_LIVE_PAIR: { kind: 'input', doc: 'No `ntbh up` is serving that run directory (its control socket is gone).' },
  CONTROL_BAD_REQUEST: { kind: 'input', doc: "A request on a live pair's control socket that is not understood." },
  PATCH_SET_MISSING: { kind: 'input', doc: 'A named patch set is not under kernel-patches/ and is not a directory.' },
  KERNEL_PATCH_EXTERNAL: { kind: 'input', doc: "Patch sets cannot be applied to a user's own tree (path:); apply them in the tree." },
  KERNEL_GIT_REF: { kind: 'input', doc: 'The git ref of a git: source does not resolve.' },
  KERNEL_TREE_NOT_CLEAN: { kind: 'input', doc: 'A path: tree has been configured in place (.config), which breaks an out-of-tree build; run `make mrproper` there.' },
  KERNEL_TREE_UNREADABLE: { kind: 'input', doc: 'A path: tree cannot be read to compute its identity.' },
  KERNEL_SOURCE_MISSING: { kind: 'input', doc: 'The kernel source directory has no Makefile with a version.' },
  KERNEL_UNSUPPORTED: { kind: 'input', doc: 'A kernel version outside the supported range (docs/kernel-sources.md).' },
  KERNEL_VERSION_UNAVAILABLE: { kind: 'input', doc: 'No Debian suite offers that kernel version; the message lists the ones available.' },
  KERNEL_CONFIG_MISMATCH: { kind: 'input', doc: 'Requested config options did not take (missing dependency or unknown symbol); the excerpt names them.' },
  BISECT_BAD_REF: { kind: 'input', doc: 'A bisect --good/--bad ref that does not resolve in the tree.' },

  // Infrastructure: the machine, the builds, QEMU, SSH, the link.
  COMMAND_FAILED: { kind: 'infra', doc: 'An outer-machine command failed; the excerpt has its last output lines, the log its whole output.' },
  INTERNAL: { kind: 'infra', doc: 'A bug in the harness; please report it with the run directory.' },
  SETUP_NOT_ROOT: { kind: 'infra', doc: '`ntbh setup` needs root to install packages.' },
  SETUP_NO_APT: { kind: 'infra', doc: 'The machine has no apt: the harness needs Debian (bookworm or later).' },
  SETUP_NO_DEBIAN_ARCHIVE: { kind: 'infra', doc: "The machine's apt configuration names no Debian archive to derive the other suites from." },
  SETUP_APT_UPDATE: { kind: 'infra', doc: '`apt-get update` failed (network or a broken source).' },
  SETUP_APT_PIN: { kind: 'infra', doc: 'The pin that keeps the added suites from upgrading the machine did not take.' },
  SETUP_APT_INSTALL: { kind: 'infra', doc: 'Installing the Debian packages the harness needs failed.' },
  SETUP_FAILED: { kind: 'infra', doc: 'Another setup step failed (adding the arm64 architecture, writing apt files).' },
  TOOLCHAIN_MISSING: { kind: 'infra', doc: 'The compiler for the target arch is missing; run `npx ntbh setup`.' },
  QEMU_SOURCE_FETCH: { kind: 'infra', doc: 'The QEMU 7.2 source package could not be fetched from the configured apt sources.' },
  QEMU_BUILD_FAILED: { kind: 'infra', doc: "Building QEMU with the link devices failed; the excerpt has the compiler's errors." },
  KERNEL_SOURCE_APT: { kind: 'infra', doc: 'apt could not list or download the linux-source package.' },
  KERNEL_SOURCE_DOWNLOAD: { kind: 'infra', doc: 'The kernel source download failed or its SHA256 did not match the archive.' },
  KERNEL_SOURCE_UNPACK: { kind: 'infra', doc: 'Unpacking the kernel source failed (disk space, a damaged archive).' },
  KERNEL_GIT: { kind: 'infra', doc: 'Cloning or fetching a git: kernel source failed.' },
  KERNEL_TREE_GIT: { kind: 'infra', doc: "git failed while computing a path: tree's identity." },
  KERNEL_WORKTREE: { kind: 'infra', doc: 'Preparing the hard-linked work tree for a build failed.' },
  KERNEL_PATCH_FAILED: { kind: 'infra', doc: 'A patch of the patch set does not apply to this kernel source.' },
  KERNEL_CONFIG_FAILED: { kind: 'infra', doc: 'tinyconfig, merge_config.sh or olddefconfig failed.' },
  KERNEL_BUILD_FAILED: { kind: 'infra', doc: "The kernel or an out-of-tree module did not build; the excerpt has the compiler's errors." },
  KERNEL_DEPMOD: { kind: 'infra', doc: 'depmod failed on the installed modules.' },
  PCITEST_BUILD_FAILED: { kind: 'infra', doc: "Building the kernel's tools/pci/pcitest statically failed." },
  IMAGE_BUILD: { kind: 'infra', doc: 'Building the guest image failed.' },
  IMAGE_DEB_RESOLVE: { kind: 'infra', doc: "A Debian package for the guest image (or one of its dependencies) has no candidate for the guest's arch." },
  IMAGE_DEB_DOWNLOAD: { kind: 'infra', doc: 'Downloading a Debian package for the guest image failed.' },
  IMAGE_DEB_UNPACK: { kind: 'infra', doc: 'Unpacking a Debian package for the guest image failed.' },
  IMAGE_ELF: { kind: 'infra', doc: 'readelf could not read a binary for the guest image.' },
  IMAGE_MISSING_LIBRARY: { kind: 'infra', doc: 'A binary in the image needs a library none of the image packages ships.' },
  IMAGE_HOSTKEY: { kind: 'infra', doc: "Making the guest's SSH host key failed." },
  IMAGE_CPIO: { kind: 'infra', doc: 'Writing the initramfs archive failed.' },
  INITRD: { kind: 'infra', doc: "Appending the run's SSH key to the initramfs failed." },
  QEMU_START_FAILED: { kind: 'infra', doc: "QEMU exited right after it started (bad arguments, a missing ROM); the excerpt is QEMU's stderr." },
  BOOT_QEMU_EXITED: { kind: 'infra', doc: "QEMU exited during boot; the excerpt has QEMU's stderr and the console's tail." },
  BOOT_TIMEOUT: { kind: 'infra', doc: "A guest did not reach SSH in time; the excerpt is the console's tail (raise NTBH_TIMEOUT_SCALE on a slow machine)." },
  BOOT_NO_OUTPUT: { kind: 'infra', doc: 'The console stayed silent too long before the guest was ready (a hung boot).' },
  CONSOLE_TIMEOUT: { kind: 'infra', doc: 'An expected console line never appeared.' },
  GUEST_NOT_READY: { kind: 'infra', doc: 'A command was sent to a guest that is not up (not booted yet, or already stopped).' },
  SSH_CONNECT: { kind: 'infra', doc: 'SSH to a guest could not be set up.' },
  SSH_LOST: { kind: 'infra', doc: 'The SSH connection to a guest went away (the guest died or hung).' },
  SSH_EXEC: { kind: 'infra', doc: 'A command could not be started over SSH.' },
  EXEC_TIMEOUT: { kind: 'infra', doc: 'A guest command outlived its timeout and was killed.' },
  EXEC_ABORTED: { kind: 'infra', doc: 'A guest command was stopped because its step was cancelled (timeout, Ctrl-C).' },
  EXEC_FAILED: { kind: 'infra', doc: 'A guest command that had to succeed failed.' },
  GUEST_COMMAND_FAILED: { kind: 'infra', doc: 'A guest command of a step failed; the excerpt has its stderr.' },
  GUEST_WRITE_FAILED: { kind: 'infra', doc: 'A sysfs/debugfs/configfs write the harness relies on was refused.' },
  QMP_CONNECT: { kind: 'infra', doc: "QEMU's QMP socket could not be reached." },
  QMP_CLOSED: { kind: 'infra', doc: 'QEMU closed QMP (it exited).' },
  QMP_TIMEOUT: { kind: 'infra', doc: 'A QMP command got no answer in time.' },
  QMP_ERROR: { kind: 'infra', doc: 'QEMU answered a QMP command with an error (e.g. a hot-plug refused).' },
  LINK_TIMEOUT: { kind: 'infra', doc: 'The link devices did not connect through the relay in time.' },
  EPC_MISSING: { kind: 'infra', doc: 'The EP guest shows no vepc controller under /sys/class/pci_epc.' },
  NO_EPC: { kind: 'infra', doc: 'configfs offers no endpoint controller to link the function to.' },
  EPF_NTB_NO_CONTROLLER: { kind: 'infra', doc: 'pci-epf-ntb needs two distinct endpoint controllers (one per host) and the EP lacks one.' },
  EPF_NTB_FUNCTION: { kind: 'infra', doc: 'The pci-epf-ntb function or its pci_epf_ntb.N attribute directory could not be created in configfs.' },
  EPF_NTB_BIND: { kind: 'test', doc: "pci-epf-ntb refused its primary or secondary controller (the excerpt has the EP's kernel log)." },
  EPF_NTB_START: { kind: 'test', doc: "An endpoint controller of the pci-epf-ntb bridge did not start (the excerpt has the EP's kernel log)." },
  NTB_TOOL_MISSING: { kind: 'infra', doc: "ntb_tool's debugfs directory did not appear (the NTB device did not probe)." },
  NTB_LINK_DOWN: { kind: 'infra', doc: 'The NTB link did not come up on both sides in time.' },
  NO_TEST_DEVICE: { kind: 'infra', doc: 'The host has no /dev/pci-endpoint-test.* for pcitest.' },
  STEP_TIMEOUT: { kind: 'infra', doc: 'A step outlived its budget; it was stopped (its guest commands killed) before the next step.' },
  CONTROL_TIMEOUT: { kind: 'infra', doc: "A live pair's control socket gave no answer in time." },
  CONTROL_FAILED: { kind: 'infra', doc: 'A step run through a live pair failed in the live process.' },
  MERGE_SHARD_MISSING: { kind: 'infra', doc: "Cells of the matrix that no merged shard ran (a shard is missing from the merge); the merged cell is an ERROR naming the shard." },
  REPRODUCE_NO_CELL: { kind: 'infra', doc: "The reproduced run did not produce the bundle's cell." },
  BISECT_GIT: { kind: 'infra', doc: 'A git command of the bisection failed.' },

  // The code under test: a guest kernel that died (exit code 1, like a failed check).
  BOOT_PANIC: { kind: 'test', doc: "A guest's kernel panicked (or oopsed fatally) during boot; the excerpt is the console around it." },
  GUEST_PANIC: { kind: 'test', doc: "A guest's kernel panicked while a command ran; the excerpt is the console around it." },
  GUEST_DIED: { kind: 'test', doc: "A guest's QEMU exited while a command ran (a reboot or power-off from the kernel)." },
} as const satisfies Record<string, ErrorCodeDoc>;

export type ErrorCode = keyof typeof errorCodes;

/** The catalogue as Markdown (docs/error-codes.md). */
export function errorCodesMarkdown(): string {
  const lines = [
    '# Error codes',
    '',
    'Every error the harness reports carries a stable code, its kind (exit code 3 for `input`, 2 for `infra`,',
    '1 for `test`), the phase and, where it concerns one, the guest. Generated from `harness/error-codes.ts` by',
    '`ntbh errors`.',
    '',
    '| code | kind | meaning |',
    '|---|---|---|',
  ];
  for (const [code, entry] of Object.entries(errorCodes)) lines.push(`| \`${code}\` | ${entry.kind} | ${entry.doc} |`);
  return `${lines.join('\n')}\n`;
}
