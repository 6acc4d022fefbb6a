package main

// platform is a GOOS/GOARCH pair a release is built for.
type platform struct {
	GOOS, GOARCH string
	GOARM        string // for GOARCH=arm: the oldest ARM version the build runs on
	// pending marks a platform whose port is not finished: when it does
	// not compile, the release skips it with a message instead of
	// failing. Once it compiles, delete the mark, so a release that
	// loses it fails.
	pending bool
}

func (p platform) String() string { return p.GOOS + "/" + p.GOARCH }

// clients are the platforms a release ships a gosync for (the developer's
// machine), in the order they are built.
var clients = []platform{
	{GOOS: "darwin", GOARCH: "arm64"},
	{GOOS: "darwin", GOARCH: "amd64"},
	{GOOS: "windows", GOARCH: "amd64"},
	{GOOS: "windows", GOARCH: "arm64"},
	{GOOS: "linux", GOARCH: "amd64"},
	{GOOS: "linux", GOARCH: "arm64"},
	{GOOS: "linux", GOARCH: "arm", GOARM: "7"},
	{GOOS: "freebsd", GOARCH: "amd64"},
}

// servers are the platforms every release gosync carries an agent for.
// ARMv7 covers the Raspberry Pi 2 and later in 32-bit mode and every
// 32-bit ARM board sold today; ARMv6 hosts need --remote-gosync.
var servers = []platform{
	{GOOS: "linux", GOARCH: "amd64"},
	{GOOS: "linux", GOARCH: "arm64"},
	{GOOS: "linux", GOARCH: "arm", GOARM: "7"},
	{GOOS: "linux", GOARCH: "386"},
	{GOOS: "freebsd", GOARCH: "amd64"},
	{GOOS: "darwin", GOARCH: "arm64"},
	{GOOS: "darwin", GOARCH: "amd64"},
}
