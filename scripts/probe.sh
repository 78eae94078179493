# SPDX-License-Identifier: Apache-2.0
# Sourced by scripts/check and scripts/demo, from the repository's root:
# can this host's KVM run vireo's guests natively? Each function prints why
# not and fails, or succeeds silently.
# probe_kvm VIREO GUESTS: does this host's KVM run our smallest guest?
probe_kvm() {
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "no usable /dev/kvm"; return 1; }
	timeout 30 "$1" run --kernel "$2/poweroff.bzImage" --memory 32M \
		< /dev/null > /dev/null 2>&1 || { echo "/dev/kvm is there but does not run a test guest"; return 1; }
}
# probe_linux VIREO: does it boot Debian's kernel to init within 5 s? (The
# kernel and initramfs must be ready: linux_vm.kernel_and_base().)
probe_linux() {
	local out
	out=$(/usr/bin/python3 - "$1" <<-'EOF' 2>&1
		import pathlib, subprocess, sys, tempfile
		sys.path.insert(0, "tests/integration")
		import linux_vm
		kernel, _ = linux_vm.kernel_and_base()
		with tempfile.TemporaryDirectory() as d:
		    rd = linux_vm.initrd(pathlib.Path(d), "echo PROBE-OK")
		    try:
		        r = subprocess.run([sys.argv[1], "run", "--kernel", str(kernel), "--initrd", str(rd),
		                            "--cmdline", linux_vm.CMDLINE, "--memory", "256M"],
		                           stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
		        print("PROBE-OK" in r.stdout.decode(errors="replace"))
		    except subprocess.TimeoutExpired:
		        print("timeout")
		EOF
	)
	[ "$(echo "$out" | tail -n1)" = True ] || { echo "Linux does not boot under this host's KVM within 5 s (${out##*$'\n'})"; return 1; }
}

