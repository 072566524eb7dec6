# openmifi build. Everything a target needs is fetched by the target itself
# and cached under .cache/ (ignored by git).

export PATH := $(PATH):/usr/local/go/bin
GO        ?= go
CACHE     := $(CURDIR)/.cache
OUT       := $(CURDIR)/out
# A count, not a duration: Go 1.26's fuzz coordinator can fail a run whose
# -fuzztime deadline expires while a starved worker is mid-input
# (go.dev/issue/75804), which a loaded 2-core CI machine hits.
FUZZTIME  ?= 20000x

STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(CACHE)/bin/staticcheck-$(STATICCHECK_VERSION)

# Programs that go onto the device, and the architectures of the boards.
DEVICE_PROGRAMS := hotspotd hotspotctl entitlement-http
ARCHES          := amd64 arm arm64 mipsle

# Debian packages the tests and benchmarks use: namespaces and veth
# (iproute2), the nftables CLI to inspect rulesets, ping, iperf3, the DHCP
# clients people use (udhcpc, dhclient, dhcpcd), perfdhcp and dnsmasq to
# compare against (the -base packages: no services started on the host),
# QEMU for the boards' twins; wpa_supplicant, hostapd and iw go into the
# test image (the Wi-Fi clients, and the AP we compare against).
DEBIAN_PACKAGES := iproute2 nftables iputils-ping iperf3 busybox-static isc-dhcp-client dhcpcd-base kea-admin dnsmasq-base \
	qemu-system-x86 qemu-system-arm qemu-system-mips wpasupplicant hostapd iw
BOARD ?= qemu-x86_64

.PHONY: build cross test deps lint unit fuzz test-qemu size run run-host rootfs qemu image clean

build:
	$(GO) build -o $(OUT)/host/ ./cmd/...

# Static, stripped, reproducible binaries for every board architecture.
cross:
	@for arch in $(ARCHES); do \
	  for prog in $(DEVICE_PROGRAMS); do \
	    echo "linux/$$arch $$prog"; \
	    CGO_ENABLED=0 GOOS=linux GOARCH=$$arch GOARM=7 GOMIPS=softfloat \
	      $(GO) build -trimpath -ldflags='-s -w -buildid=' -o $(OUT)/linux-$$arch/$$prog ./cmd/$$prog || exit 1; \
	  done; \
	done

test: deps lint unit fuzz test-qemu

# Installs what is missing, as root; a normal user's run skips the tests
# that need them, with a message.
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "not root: not installing $$missing (tests needing them skip)"; exit 0; fi; \
	echo "installing $$missing"; \
	apt-get update -qq || echo "apt-get update reported errors (a foreign-architecture index?); installing anyway"; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

lint: $(STATICCHECK)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))" || { gofmt -l .; echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v '/rootfs/qemutest$$')

# Boots qemu-x86_64 (and qemu-armv7) and drives their serial consoles.
test-qemu:
	$(GO) test -count=1 -v -timeout 15m ./rootfs/qemutest

# Every fuzz target briefly: the seed corpora under testdata/ run in 'unit'
# already; this explores a little beyond them on every run.
fuzz:
	@mkdir -p $(CACHE)
	@for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$target"; \
	    $(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg >$(CACHE)/fuzz.log 2>&1 || { cat $(CACHE)/fuzz.log; exit 1; }; \
	  done; \
	done

$(STATICCHECK):
	@mkdir -p $(CACHE)/bin
	GOBIN=$(CACHE)/gobin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(CACHE)/gobin/staticcheck $@

size: cross
	@printf '%-18s' program; for arch in $(ARCHES); do printf '%12s' $$arch; done; echo
	@for prog in $(DEVICE_PROGRAMS); do \
	  printf '%-18s' $$prog; \
	  for arch in $(ARCHES); do printf '%12s' $$(stat -c %s $(OUT)/linux-$$arch/$$prog); done; echo; \
	done

# The main job: the qemu-x86_64 image booted with its console on this
# terminal (Ctrl-A X quits). A client joining the hotspot inside it comes
# with the Wi-Fi driver.
run: deps
	sh scripts/qemu.sh $(BOARD)

# hotspotd on this host with its real control socket, driven by hotspotctl.
run-host: build
	sh scripts/run-host.sh $(OUT)/host

qemu: deps
	sh scripts/qemu.sh $(BOARD)

# Initramfs and kernel of a board, the parts of its firmware image.
rootfs:
	$(GO) run ./rootfs/mkrootfs -board $(BOARD) -fetch $$([ "$$(id -u)" = 0 ] && echo -add-arch) \
	  -o $(OUT)/$(BOARD)/rootfs.cpio -kernel-out $(OUT)/$(BOARD)/vmlinuz

# The firmware image: the board's kernel and root filesystem, signed. A
# development key is made on first use; a release passes IMAGE_KEY=...
IMAGE_VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_KEY         ?= $(CACHE)/keys/image.key
IMAGE_PUB         ?= $(IMAGE_KEY:.key=.pub)

image: rootfs $(IMAGE_KEY)
	@mkdir -p $(OUT)/images
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./cmd/fwimage build -board $(BOARD) \
	  -kernel $(OUT)/$(BOARD)/vmlinuz -rootfs $(OUT)/$(BOARD)/rootfs.cpio -key $(IMAGE_KEY) \
	  -version $(IMAGE_VERSION) -out $(OUT)/images/$(BOARD).img
	$(GO) run ./cmd/fwimage verify -keys $(IMAGE_PUB) -board $(BOARD) $(OUT)/images/$(BOARD).img

$(IMAGE_KEY):
	@mkdir -p $(dir $@)
	$(GO) run ./cmd/opsign keygen $@ $(IMAGE_PUB)

clean:
	rm -rf $(OUT)
