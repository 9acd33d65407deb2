package main

// LibTorch from PyPI: PyTorch's own wheels carry LibTorch's headers (torch/include)
// and shared libraries (torch/lib). setup downloads the wheel with pip (no Python
// is needed when loraqa runs), unpacks the parts a build needs into
// .build/pypi/torch-<version>-<flavour>/, laid out as site-packages is
// (torch/ beside nvidia/), so that the RPATH $ORIGIN/../../nvidia/<x>/lib that
// PyTorch's libraries carry finds the CUDA runtime wheels.
//
//	cpu flavour:  libtorch_cpu + libc10 (+ their bundled libgomp) and only the CUDA
//	              runtime wheels libtorch_cpu itself needs (cudart, cupti: small);
//	cuda flavour: every library of the wheel (libtorch_cuda, libc10_cuda, ...) and
//	              every nvidia-* wheel it requires.

import (
	"archive/zip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"

	"github.com/loraqa/loraqa/internal/atomicfile"
)

// PinnedPyPIVersion is the one place the default PyPI LibTorch version is pinned
// (LIBTORCH_VERSION overrides it). 2.1.x is what gotch v0.9.1 was generated for.
const PinnedPyPIVersion = "2.1.2"

// cudaWheelOf maps a CUDA library's file name prefix to the PyPI wheel family that ships it.
var cudaWheelOf = []struct{ lib, wheel string }{
	{"libcudart.", "nvidia-cuda-runtime"},
	{"libcupti.", "nvidia-cuda-cupti"},
	{"libnvrtc", "nvidia-cuda-nvrtc"},
	{"libnvToolsExt.", "nvidia-nvtx"},
	{"libcublasLt.", "nvidia-cublas"},
	{"libcublas.", "nvidia-cublas"},
	{"libcudnn", "nvidia-cudnn"},
	{"libcufft", "nvidia-cufft"},
	{"libcurand.", "nvidia-curand"},
	{"libcusolver", "nvidia-cusolver"},
	{"libcusparseLt", "nvidia-cusparselt"},
	{"libcusparse.", "nvidia-cusparse"},
	{"libnccl.", "nvidia-nccl"},
	{"libnvJitLink.", "nvidia-nvjitlink"},
	{"libcufile", "nvidia-cufile"},
}

// cacheDir is where downloaded wheels are kept across clones and `make clean`.
func cacheDir() string {
	if d := os.Getenv("LORAQA_WHEEL_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "loraqa", "wheels")
	}
	return filepath.Join(".build", "wheels")
}

// fromPyPI returns the LibTorch of the torch==version wheel in the given flavour,
// downloading and unpacking it when it is not there yet.
func fromPyPI(version, flavour, out string, install bool) (LibTorch, error) {
	if flavour != "cpu" && flavour != "cuda" {
		return LibTorch{}, fmt.Errorf("LIBTORCH_FLAVOUR=%q: want cpu or cuda", flavour)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(version) {
		return LibTorch{}, fmt.Errorf("LIBTORCH_VERSION=%q: want a release such as %s", version, PinnedPyPIVersion)
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return LibTorch{}, err
	}
	root := filepath.Join(absOut, "pypi", "torch-"+version+"-"+flavour)
	done := filepath.Join(root, ".complete")
	if !fileExists(done) {
		if err := unpackPyPI(version, flavour, root, install); err != nil {
			return LibTorch{}, fmt.Errorf("LibTorch %s (%s) from PyPI: %w", version, flavour, err)
		}
		if err := atomicfile.Write(done, []byte(version+" "+flavour+"\n")); err != nil {
			return LibTorch{}, err
		}
	}
	lt, err := fromDir(filepath.Join(root, "torch"), "pypi")
	if err != nil {
		return lt, err
	}
	lt.Flavour = flavour
	lt.CUDA = flavour == "cuda"
	lt.Version = version
	lt.ExtraLibs = nvidiaLibDirs(root)
	return lt, nil
}

func pip(install bool, args ...string) error {
	py := "python3"
	if _, err := exec.LookPath(py); err != nil {
		return fmt.Errorf("python3 is needed to download LibTorch from PyPI (only at setup): %w", err)
	}
	if exec.Command(py, "-m", "pip", "--version").Run() != nil {
		if !install || os.Getuid() != 0 || !haveCmd("apt-get") {
			return fmt.Errorf("pip is missing: install python3-pip, or set LIBTORCH_SOURCE=debian / LIBTORCH=<dir>")
		}
		logf("installing python3-pip (to download LibTorch from PyPI)")
		if err := aptInstall("python3-pip"); err != nil {
			return err
		}
	}
	// The wheels are asked for as for CPython 3.11 on x86-64 Linux, whatever
	// python3 runs pip: only their C++ libraries are used, and every torch
	// release from 2.0 to 2.15 has cp311 wheels.
	base := []string{"-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:", "-q",
		"--python-version", "3.11"}
	// pip takes --platform tags literally (no older glibc is implied): every
	// manylinux tag up to glibc 2.28 that torch's and the nvidia-* wheels use
	// (torch 2.11's cuDNN, cuBLAS and cuRAND are manylinux_2_27 only).
	for _, p := range []string{"manylinux1", "manylinux2010", "manylinux2014", "manylinux_2_5", "manylinux_2_12", "manylinux_2_17",
		"manylinux_2_18", "manylinux_2_24", "manylinux_2_25", "manylinux_2_27", "manylinux_2_28"} {
		base = append(base, "--platform", p+"_x86_64")
	}
	cmd := exec.Command(py, append(base, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pip download %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// wheelFile finds the downloaded wheel of a distribution in dir (names compare
// with -, _ and . alike, case-insensitively); each torch version has a wheel
// directory of its own, so a distribution is there at most once.
func wheelFile(dir, dist string) string {
	norm := normDist(dist)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if i := strings.Index(n, "-"); i > 0 && strings.HasSuffix(n, ".whl") && normDist(n[:i]) == norm {
			return filepath.Join(dir, n)
		}
	}
	return ""
}

func normDist(s string) string {
	return strings.ToLower(strings.NewReplacer("-", "_", ".", "_").Replace(s))
}

// A requirement line of a wheel's METADATA: name, [extras], version spec, ; marker.
var requiresRe = regexp.MustCompile(`(?m)^Requires-Dist: ([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*\(?([<>=!~][^;)\r\n]*)?\)?\s*(;[^\r\n]*)?$`)
var extraRe = regexp.MustCompile(`extra == ['"]([^'"]+)['"]`)

// nvidiaRequirements lists the nvidia-* wheels a torch wheel requires, with
// their version specs. Up to 2.8 torch names them itself (nvidia-cudnn-cu12
// ==9.1.0.70); from 2.9 on most come through the cuda-toolkit[cublas,cudart,...]
// meta package, whose own METADATA maps each extra to nvidia-* wheels.
func nvidiaRequirements(meta, dir string, install bool) (map[string]string, error) {
	reqs := map[string]string{}
	for _, m := range requiresRe.FindAllStringSubmatch(meta, -1) {
		name, extras, spec, marker := m[1], strings.Trim(m[2], "[]"), strings.TrimSpace(m[3]), m[4]
		if strings.Contains(marker, "extra ==") || (marker != "" && !strings.Contains(marker, "Linux") && !strings.Contains(marker, "linux")) {
			continue
		}
		switch {
		case strings.HasPrefix(name, "nvidia-"):
			reqs[name] = spec
		case name == "cuda-toolkit" && extras != "":
			if wheelFile(dir, name) == "" {
				if err := pip(install, "-d", dir, name+spec); err != nil {
					return nil, err
				}
			}
			w := wheelFile(dir, name)
			if w == "" {
				return nil, fmt.Errorf("pip gave no %s wheel in %s", name, dir)
			}
			tk, err := readMetadata(w)
			if err != nil {
				return nil, err
			}
			want := map[string]bool{}
			for _, e := range strings.Split(extras, ",") {
				want[strings.TrimSpace(e)] = true
			}
			for _, t := range requiresRe.FindAllStringSubmatch(tk, -1) {
				e := extraRe.FindStringSubmatch(t[4])
				if e != nil && want[e[1]] && strings.HasPrefix(t[1], "nvidia-") && forLinuxX86(t[4]) {
					reqs[t[1]] = strings.TrimSpace(t[3])
				}
			}
		}
	}
	return reqs, nil
}

// forLinuxX86 says whether a requirement's marker holds on x86-64 Linux: it
// names x86_64, or it names Linux and no machine at all (cuda-toolkit 13.0.2,
// torch 2.11's: "(sys_platform == 'linux' or sys_platform == 'win32') and extra == 'cublas'").
func forLinuxX86(marker string) bool {
	if strings.Contains(marker, "x86_64") {
		return true
	}
	return !strings.Contains(marker, "platform_machine") && strings.Contains(strings.ToLower(marker), "linux")
}

func readMetadata(whl string) (string, error) {
	return unzipSelect(whl, "", func(string) bool { return false }, "METADATA")
}

func unpackPyPI(version, flavour, root string, install bool) (err error) {
	tmp := root + ".tmp"
	// A failed unpack (a full disk, most often) leaves nothing half-written behind.
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
			if errors.Is(err, syscall.ENOSPC) {
				need := map[string]string{"cpu": "0.6 GB", "cuda": "4.5 GB"}[flavour]
				err = fmt.Errorf("%w (the %s flavour unpacks about %s under %s, beside its wheels in %s; free some space and run again)",
					err, flavour, need, filepath.Dir(root), cacheDir())
			}
		}
	}()
	cache := filepath.Join(cacheDir(), "torch-"+version)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	whl := wheelFile(cache, "torch")
	if whl == "" {
		logf("downloading torch==%s from PyPI into %s (about 700 MB)", version, cache)
		if err := pip(install, "-d", cache, "torch=="+version); err != nil {
			return err
		}
		if whl = wheelFile(cache, "torch"); whl == "" {
			return fmt.Errorf("pip gave no torch-%s wheel in %s", version, cache)
		}
	}
	os.RemoveAll(tmp)
	logf("unpacking %s (%s flavour)", filepath.Base(whl), flavour)
	// The cpu flavour keeps LibTorch's CPU libraries and the OpenMP runtime they
	// bundle; libtorch.so (a shim that needs libtorch_cuda), libtorch_global_deps
	// and the CUDA libraries stay out.
	cpuLib := regexp.MustCompile(`^torch/lib/(libtorch_cpu\.so|libc10\.so|libgomp[^/]*\.so[.0-9]*)$`)
	meta, err := unzipSelect(whl, tmp, func(name string) bool {
		if strings.HasPrefix(name, "torch/include/") {
			return true
		}
		if !strings.HasPrefix(name, "torch/lib/") || strings.HasPrefix(name, "torch/lib/libtorch_python") {
			return false
		}
		return flavour == "cuda" || cpuLib.MatchString(name)
	}, "METADATA")
	if err != nil {
		return err
	}
	reqs, err := nvidiaRequirements(meta, cache, install)
	if err != nil {
		return err
	}
	// The cuda flavour takes every nvidia-* wheel; the cpu flavour only those
	// that ship a library libtorch_cpu or libc10 itself needs (cudart, cupti).
	want := map[string]bool{}
	if flavour == "cuda" {
		for d := range reqs {
			want[d] = true
		}
	} else {
		needed, err := neededLibs(filepath.Join(tmp, "torch", "lib"))
		if err != nil {
			return err
		}
		for _, lib := range needed {
			for _, c := range cudaWheelOf {
				if !strings.HasPrefix(lib, c.lib) {
					continue
				}
				for d := range reqs {
					if d == c.wheel || strings.HasPrefix(d, c.wheel+"-cu") {
						want[d] = true
					}
				}
			}
		}
	}
	// The nvidia-* wheels' own nvidia-* requirements (cusparse needs nvjitlink),
	// round after round until nothing new comes in.
	for round := 0; ; round++ {
		var missing []string
		for d := range want {
			if wheelFile(cache, d) == "" {
				missing = append(missing, d+reqs[d])
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			logf("downloading %s", strings.Join(missing, " "))
			if err := pip(install, append([]string{"-d", cache}, missing...)...); err != nil {
				return err
			}
		}
		add := map[string]string{}
		for d := range want {
			w := wheelFile(cache, d)
			if w == "" {
				return fmt.Errorf("pip gave no %s%s wheel in %s", d, reqs[d], cache)
			}
			m, err := readMetadata(w)
			if err != nil {
				return err
			}
			sub, err := nvidiaRequirements(m, cache, install)
			if err != nil {
				return err
			}
			for n, spec := range sub {
				if !want[n] {
					add[n] = spec
				}
			}
		}
		for n, spec := range add {
			want[n], reqs[n] = true, spec
		}
		if len(add) == 0 || round > 4 {
			break
		}
	}
	var dists []string
	for d := range want {
		dists = append(dists, d)
	}
	sort.Strings(dists)
	for _, d := range dists {
		w := wheelFile(cache, d)
		if w == "" {
			return fmt.Errorf("pip gave no %s%s wheel in %s", d, reqs[d], cache)
		}
		if _, err := unzipSelect(w, tmp, func(name string) bool {
			return strings.HasPrefix(name, "nvidia/") && strings.Contains(name, "/lib/")
		}, ""); err != nil {
			return err
		}
	}
	if err := checkResolved(tmp); err != nil {
		return err
	}
	os.RemoveAll(root)
	return os.Rename(tmp, root)
}

// nvidiaLibDirs lists the directories under root/nvidia that hold shared libraries.
func nvidiaLibDirs(root string) []string {
	seen := map[string]bool{}
	var dirs []string
	filepath.WalkDir(filepath.Join(root, "nvidia"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".so") && !seen[filepath.Dir(p)] {
			seen[filepath.Dir(p)] = true
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	sort.Strings(dirs)
	return dirs
}

// unzipSelect extracts the entries keep accepts and returns the text of the
// first entry whose name ends in metaSuffix (the wheel's METADATA).
func unzipSelect(whl, dst string, keep func(string) bool, metaSuffix string) (string, error) {
	zr, err := zip.OpenReader(whl)
	if err != nil {
		return "", fmt.Errorf("open %s: %w (delete it and run again)", whl, err)
	}
	defer zr.Close()
	meta := ""
	for _, f := range zr.File {
		if metaSuffix != "" && meta == "" && strings.HasSuffix(f.Name, ".dist-info/"+metaSuffix) {
			rc, err := f.Open()
			if err != nil {
				return "", err
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return "", err
			}
			meta = string(b)
		}
		if strings.HasSuffix(f.Name, "/") || !keep(f.Name) {
			continue
		}
		target := filepath.Join(dst, filepath.FromSlash(f.Name))
		if !strings.HasPrefix(target, filepath.Clean(dst)+string(os.PathSeparator)) {
			return "", fmt.Errorf("%s: entry %q leaves the target directory", whl, f.Name)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return "", err
		}
		rc, err := f.Open()
		if err != nil {
			return "", err
		}
		w, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			rc.Close()
			return "", err
		}
		_, err = io.Copy(w, rc)
		rc.Close()
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("unpack %s from %s: %w", f.Name, whl, err)
		}
	}
	return meta, nil
}

// neededLibs lists the DT_NEEDED entries of the libraries in dir.
func neededLibs(dir string) ([]string, error) {
	libs, _ := filepath.Glob(filepath.Join(dir, "*.so*"))
	seen := map[string]bool{}
	var out []string
	for _, l := range libs {
		f, err := elf.Open(l)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", l, err)
		}
		imp, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", l, err)
		}
		for _, n := range imp {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// checkResolved makes sure every CUDA library that the unpacked LibTorch and
// the CUDA libraries themselves need is in torch/lib or an nvidia/*/lib directory.
func checkResolved(root string) error {
	dirs := append(nvidiaLibDirs(root), filepath.Join(root, "torch", "lib"))
	var needed []string
	for _, d := range dirs {
		n, err := neededLibs(d)
		if err != nil {
			return err
		}
		needed = append(needed, n...)
	}
	have := map[string]bool{}
	for _, d := range dirs {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			have[e.Name()] = true
		}
	}
	var missing []string
	for _, n := range needed {
		for _, c := range cudaWheelOf {
			if strings.HasPrefix(n, c.lib) && !have[n] {
				missing = append(missing, n)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the unpacked LibTorch needs %s, which no downloaded nvidia-* wheel provides", strings.Join(missing, ", "))
	}
	return nil
}

// abiOf reads the C++ ABI LibTorch was built with from the std::string in
// c10::Error's exported constructor: "Ss" is the pre-C++11 std::string,
// "NSt7__cxx1112basic_string..." the C++11 one. ok is false when the symbol
// is not found.
func abiOf(lib string) (cxx11 bool, ok bool) {
	f, err := elf.Open(filepath.Join(lib, "libc10.so"))
	if err != nil {
		return false, false
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return false, false
	}
	const ctor = "_ZN3c105ErrorC1ENS_14SourceLocationE"
	for _, s := range syms {
		if !strings.HasPrefix(s.Name, ctor) || s.Section == elf.SHN_UNDEF {
			continue
		}
		rest := s.Name[len(ctor):]
		switch {
		case strings.HasPrefix(rest, "NSt7__cxx11"):
			return true, true
		case strings.HasPrefix(rest, "Ss"):
			return false, true
		}
	}
	return false, false
}
