package nodes

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// An agent's side of the trust (trust.go): its key, kept in its data
// directory, and the lab it pinned, with the certificate that lab signed
// for it.

// pinFile records the lab an agent belongs to, beside its certificates.
type pinFile struct {
	Lab       string `json:"lab"`
	Temporary bool   `json:"temporary"`
}

func loadAgentIdentity(dir string) (*agentIdentity, error) {
	tdir := filepath.Join(dir, "trust")
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return nil, fmt.Errorf("nodes: agent: %w", err)
	}
	keyPath := filepath.Join(tdir, "agent-key.pem")
	raw, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		k, err := newKey()
		if err != nil {
			return nil, err
		}
		der, _ := x509.MarshalECPrivateKey(k)
		raw = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
		if err := writeFileAtomic(keyPath, raw, true); err != nil {
			return nil, fmt.Errorf("nodes: agent: key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("nodes: agent: key: %w", err)
	}
	key, err := parseKeyPEM(raw)
	if err != nil {
		return nil, fmt.Errorf("nodes: agent: %s: %w (start with --reset to make a new one)", keyPath, err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	self, err := signCert("caplab agent (not enrolled)", &key.PublicKey, false, nil, key)
	if err != nil {
		return nil, err
	}
	id := &agentIdentity{dir: tdir, key: tls.Certificate{Certificate: [][]byte{self}, PrivateKey: key}, pkix: pkix}
	p, err := id.loadPin()
	if err != nil {
		return nil, err
	}
	id.pinned = p
	return id, nil
}

// loadPin reads the pinned lab, if there is one.
func (id *agentIdentity) loadPin() (*agentPin, error) {
	pinRaw, err := os.ReadFile(filepath.Join(id.dir, "pin.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nodes: agent: %w", err)
	}
	var pf pinFile
	caRaw, err1 := os.ReadFile(filepath.Join(id.dir, "lab-ca.pem"))
	certRaw, err2 := os.ReadFile(filepath.Join(id.dir, "agent-cert.pem"))
	if err := json.Unmarshal(pinRaw, &pf); err != nil || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("nodes: agent: %s is incomplete or damaged: start with --reset", id.dir)
	}
	ca, err1 := parseCertPEM(caRaw)
	cert, err2 := parseCertPEM(certRaw)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("nodes: agent: %s is damaged: start with --reset", id.dir)
	}
	return id.newPin(pf, ca, cert.Raw)
}

// newPin checks a lab's certificate for this agent and makes the pin.
func (id *agentIdentity) newPin(pf pinFile, ca *x509.Certificate, certDER []byte) (*agentPin, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("the agent's certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("the agent's certificate is not signed by the lab's: %w", err)
	}
	pkix, _ := x509.MarshalPKIXPublicKey(cert.PublicKey)
	if !bytes.Equal(pkix, id.pkix) {
		return nil, errors.New("the agent's certificate is not for this agent's key")
	}
	return &agentPin{lab: pf.Lab, temporary: pf.Temporary, ca: ca, fingerprint: fingerprint(ca.Raw), pool: pool,
		cert: tls.Certificate{Certificate: [][]byte{certDER}, PrivateKey: id.key.PrivateKey}}, nil
}

// enroll pins a lab: cs is the control connection, whose client
// certificate must be the lab's, signed by the certificate it gives.
func (id *agentIdentity) enroll(e *enrollment, cs tls.ConnectionState) error {
	if id.pin() != nil {
		return errors.New("this agent already belongs to a lab")
	}
	ca, err := x509.ParseCertificate(e.CA)
	if err != nil || !ca.IsCA {
		return errors.New("the lab's certificate is not a certificate authority")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if cn, err := verifyPeer(pool, cs.PeerCertificates); err != nil || cn != labCommonName {
		return fmt.Errorf("the lab's own certificate on this connection is not signed by the certificate it gives: %v", err)
	}
	p, err := id.newPin(pinFile{Lab: e.Lab, Temporary: e.Temporary}, ca, e.Cert)
	if err != nil {
		return err
	}
	pf, _ := json.Marshal(pinFile{Lab: e.Lab, Temporary: e.Temporary})
	for name, data := range map[string][]byte{
		"lab-ca.pem":     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.CA}),
		"agent-cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.Cert}),
	} {
		if err := writeFileAtomic(filepath.Join(id.dir, name), data, true); err != nil {
			return err
		}
	}
	// The pin last: a directory with a pin.json has the whole pin.
	if err := writeFileAtomic(filepath.Join(id.dir, "pin.json"), pf, true); err != nil {
		return err
	}
	id.mu.Lock()
	id.pinned = p
	id.mu.Unlock()
	return nil
}

// forget unpins the lab (it left, temporary).
func (id *agentIdentity) forget() error {
	id.mu.Lock()
	id.pinned = nil
	id.mu.Unlock()
	for _, name := range []string{"pin.json", "lab-ca.pem", "agent-cert.pem"} {
		if err := os.Remove(filepath.Join(id.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// serverConfig is the TLS of the agent's port: its lab-signed
// certificate once enrolled, its own before; client certificates are
// asked for and checked after the handshake (peerName), so that a refusal
// can say why.
func (id *agentIdentity) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if p := id.pin(); p != nil {
				return &p.cert, nil
			}
			return &id.key, nil
		},
	}
}

// clientConfig is the TLS for dialling another agent of the lab.
func (id *agentIdentity) clientConfig(p *agentPin) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{p.cert},
		InsecureSkipVerify: true, // verifyAgent checks the lab's signature and the region after the handshake
	}
}

// peerName is the name on the certificate a connection presented, if the
// pinned lab signed it.
func (id *agentIdentity) peerName(cs tls.ConnectionState) (string, error) {
	p := id.pin()
	if p == nil {
		return "", errors.New("this agent belongs to no lab yet")
	}
	return verifyPeer(p.pool, cs.PeerCertificates)
}
