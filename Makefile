# SPDX-License-Identifier: Apache-2.0
# The front door: meson + ninja do the work underneath.
BUILD := build
ASAN := build-asan
GUESTS := $(BUILD)/guests
PYTEST := /usr/bin/python3 -m pytest -q -p no:cacheprovider

.PHONY: all setup vireo guests asan check check-unit check-integration demo bench fuzz clean

all: vireo guests

setup:
	scripts/setup.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

$(ASAN)/build.ninja:
	meson setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

vireo: $(BUILD)/build.ninja
	ninja -C $(BUILD)

asan: $(ASAN)/build.ninja
	ninja -C $(ASAN)

guests:
	$(MAKE) -C tests/guests O=$(abspath $(GUESTS))

# Every test: unit tests in both builds, then the process-level tests against
# the ASan/UBSan binary and the plain one, with the KVM and Linux guest
# tests natively or inside scripts/lab as this host allows (scripts/check
# says which, first).
check: all asan
	BUILD=$(BUILD) ASAN=$(ASAN) scripts/check

demo: all
	BUILD=$(BUILD) scripts/demo

bench: all
	bench/run-all.sh

fuzz:
	scripts/fuzz.sh

clean:
	rm -rf $(BUILD) $(ASAN) build-fuzz
