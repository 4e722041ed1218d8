package spoctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"
)

// PKI is a certificate hierarchy generated for TLS tests: a root CA, an
// intermediate CA it signed, and leaves signed by the intermediate, as
// public CAs issue them. Nothing of it is trusted anywhere: a test trusts
// the root by giving RootPEM as a CA file.
type PKI struct {
	Root, Intermediate *x509.Certificate
	rootKey, intKey    *ecdsa.PrivateKey
}

// NewPKI generates a root and an intermediate. intermediateIssuersURL is
// the CA Issuers URL written into the intermediate (where the root could
// be fetched); empty for none.
func NewPKI(intermediateIssuersURL string) (*PKI, error) {
	p := &PKI{}
	var err error
	if p.rootKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if p.intKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	now := time.Now()
	root := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "spoctest Root CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if p.Root, err = sign(root, root, &p.rootKey.PublicKey, p.rootKey); err != nil {
		return nil, err
	}
	intermediate := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "spoctest Intermediate CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if intermediateIssuersURL != "" {
		intermediate.IssuingCertificateURL = []string{intermediateIssuersURL}
	}
	if p.Intermediate, err = sign(intermediate, p.Root, &p.intKey.PublicKey, p.rootKey); err != nil {
		return nil, err
	}
	return p, nil
}

// RootPEM is the root certificate in PEM, as a CA file holds it.
func (p *PKI) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.Raw})
}

// LeafOptions describe a leaf certificate.
type LeafOptions struct {
	// Hosts are the DNS names and IP addresses it is for.
	Hosts []string
	// IssuersURL is its CA Issuers URL, where the intermediate can be
	// fetched; empty for none.
	IssuersURL string
	// MoreIssuersURLs are further CA Issuers URLs, after IssuersURL: a
	// certificate may carry thousands.
	MoreIssuersURLs []string
	// SelfSigned makes a leaf that signs itself instead of one the
	// intermediate signs.
	SelfSigned bool
	// Expired makes a leaf whose validity ended an hour ago.
	Expired bool
}

// Leaf generates a leaf certificate. The returned tls.Certificate holds
// the leaf alone: a server with it sends no intermediate.
func (p *PKI) Leaf(opts LeafOptions) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "spoctest server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if opts.Expired {
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Hour)
	}
	for _, h := range opts.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if opts.IssuersURL != "" {
		tmpl.IssuingCertificateURL = []string{opts.IssuersURL}
	}
	tmpl.IssuingCertificateURL = append(tmpl.IssuingCertificateURL, opts.MoreIssuersURLs...)
	var leaf *x509.Certificate
	if opts.SelfSigned {
		tmpl.Subject.CommonName = "spoctest self-signed server"
		leaf, err = sign(tmpl, tmpl, &key.PublicKey, key)
	} else {
		leaf, err = sign(tmpl, p.Intermediate, &key.PublicKey, p.intKey)
	}
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// WithChain returns cert with the intermediate appended: a server with it
// sends the full chain, as a well-configured one does.
func (p *PKI) WithChain(cert tls.Certificate) tls.Certificate {
	cert.Certificate = append(cert.Certificate[:len(cert.Certificate):len(cert.Certificate)], p.Intermediate.Raw)
	return cert
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// NewTLSServer starts a fake upstream on 127.0.0.1 that serves HTTPS with
// cert (and only the chain cert holds: see PKI.Leaf and PKI.WithChain).
func NewTLSServer(cert tls.Certificate, opts ...Option) *Server {
	h := NewHandler(opts...)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what the tests expect
	srv.StartTLS()
	return &Server{Server: srv, Handler: h}
}

// IssuersServer serves certificates as a CA Issuers URL does: DER by
// default, on any path.
type IssuersServer struct {
	*httptest.Server
	body     []byte
	requests atomic.Int64
}

// Requests is the number of requests received so far.
func (s *IssuersServer) Requests() int { return int(s.requests.Load()) }

// NewIssuersServer starts a plain-HTTP server on 127.0.0.1 that answers
// every request with body (a DER certificate, PEM, or PKCS#7).
func NewIssuersServer(body []byte) *IssuersServer {
	s := &IssuersServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Write(s.body)
	}))
	return s
}
