package sdk

import (
	"context"
	"errors"
	"math"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/twofactor/twofactor/sdk/internal/pb"
	"github.com/twofactor/twofactor/sdk/internal/wire"
)

// This file converts what the plugin's server receives from the wire types
// and what it answers to them. The host's direction is package
// sdk/plugin's; nothing else touches pb.

func factorsToPB(fs []Factor) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f))
	}
	return out
}

// infoToPB answers Info. The wire's protocol_version carries the version
// negotiated with this host: hosts built before Info.ProtocolVersion was
// dropped read it, later hosts ignore it.
func infoToPB(i Info, negotiated int) *pb.InfoResponse {
	out := &pb.InfoResponse{
		Name:            i.Name,
		Version:         i.Version,
		ProtocolVersion: int32(negotiated),
		Description:     i.Description,
		Capabilities: &pb.Capabilities{
			Code:                    i.Capabilities.Code,
			Push:                    i.Capabilities.Push,
			EnrollNeedsConfirmation: i.Capabilities.EnrollNeedsConfirmation,
			ChallengeFactors:        factorsToPB(i.Capabilities.Challenges),
			Factors:                 factorsToPB(i.Capabilities.Factors),
			MultipleCredentials:     i.Capabilities.MultipleCredentials,
			SilentChallenges:        i.Capabilities.SilentChallenges,
			EnrollSendsTo:           i.Capabilities.EnrollSendsTo,
		},
	}
	out.Schema = schemaToPB(i.Schema)
	out.EnrollInputs = schemaToPB(i.EnrollInputs)
	out.CodeInput = codeInputToPB(i.CodeInput)
	out.Texts = textsToPB(i.Texts)
	return out
}

// textsToPB sends Texts; none at all is sent as absent, as from a plugin
// built before Texts.
func textsToPB(t Texts) *pb.Texts {
	if t.IsZero() {
		return nil
	}
	return &pb.Texts{Name: t.Name, Choice: t.Choice, SignIn: t.SignIn, Enroll: t.Enroll, Prepare: t.Prepare,
		SetupTitle: t.SetupTitle, Setup: t.Setup, ScanAlt: t.ScanAlt, WrongCode: t.WrongCode, Waiting: t.Waiting}
}

func schemaToPB(s Schema) []*pb.Field {
	var out []*pb.Field
	for _, f := range s {
		out = append(out, &pb.Field{
			Name: f.Name, Type: string(f.Type), Required: f.Required, Secret: f.Secret,
			Default: f.Default, Help: f.Help, Enum: f.Enum, Min: f.Min, Max: f.Max, Loosens: loosensToPB(f.Loosens),
			Label: f.Label, Format: string(f.Format),
		})
	}
	return out
}

func loosensToPB(l *Loosens) *pb.Loosens {
	if l == nil {
		return nil
	}
	return &pb.Loosens{Values: l.Values, Higher: l.Higher, Lower: l.Lower, Why: l.Why}
}

func activationToPB(a Activation) *pb.ActivateResponse {
	out := &pb.ActivateResponse{Health: string(a.Health)}
	for _, d := range a.Diagnostics {
		out.Diagnostics = append(out.Diagnostics, &pb.Diagnostic{Code: d.Code, Message: d.Message, Value: d.Value,
			Severity: string(d.Severity), Fix: d.Fix})
	}
	return out
}

func userFromPB(u *pb.User) User { return User{ID: u.GetId(), AccountName: u.GetAccountName()} }

func enrollReqFromPB(r *pb.EnrollRequest) EnrollRequest {
	return EnrollRequest{User: userFromPB(r.GetUser()), Step: EnrollStep(r.GetStep()), State: r.GetState(), Code: r.GetCode(), Now: wire.FromUnixNano(r.GetNowUnixNano()),
		Inputs: r.GetInputs(), Credential: r.GetCredential()}
}

func enrollRespToPB(r EnrollResponse) *pb.EnrollResponse {
	return &pb.EnrollResponse{
		State: r.State, Done: r.Done, Reason: string(r.Reason),
		Display: &pb.Display{
			OtpauthUrl: r.Display.OTPAuthURL, QrPng: r.Display.QRPNG, ActivationUrl: r.Display.ActivationURL,
			ActivationCode: r.Display.ActivationCode, Instructions: r.Display.Instructions, BarcodeUrl: r.Display.BarcodeURL,
			Public: r.Display.Public, CodeInput: codeInputToPB(r.Display.CodeInput),
			SignInCodeInput: codeInputToPB(r.Display.SignInCodeInput),
		},
		Credentials: credentialsToPB(r.Credentials),
	}
}

// codeInputToPB sends nothing for the zero value, as a plugin built
// before CodeInput does. Lengths beyond int32 are clamped, not wrapped:
// still out of bounds, the host refuses them.
func codeInputToPB(c CodeInput) *pb.CodeInput {
	if c.IsZero() {
		return nil
	}
	return &pb.CodeInput{Kind: string(c.Kind), MinLen: clampInt32(c.MinLen), MaxLen: clampInt32(c.MaxLen), Label: c.Label}
}

func clampInt32(n int) int32 { return int32(min(max(n, math.MinInt32), math.MaxInt32)) }

func credentialsToPB(cs []Credential) []*pb.Credential {
	var out []*pb.Credential
	for _, c := range cs {
		out = append(out, &pb.Credential{Id: c.ID, Label: c.Label,
			CreatedUnixNano: wire.UnixNano(c.CreatedAt), LastUsedUnixNano: wire.UnixNano(c.LastUsedAt)})
	}
	return out
}

func verifyReqFromPB(r *pb.VerifyRequest) VerifyRequest {
	return VerifyRequest{
		User: userFromPB(r.GetUser()), State: r.GetState(), Code: r.GetCode(), Factor: Factor(r.GetFactor()),
		TxID: r.GetTxid(), ClientIP: r.GetClientIp(), Now: wire.FromUnixNano(r.GetNowUnixNano()),
		TrustToken: r.GetTrustToken(), Failures: max(int(r.GetFailures()), 0),
	}
}

func verifyRespToPB(r VerifyResponse) *pb.VerifyResponse {
	return &pb.VerifyResponse{
		Outcome: string(r.Outcome), Reason: string(r.Reason), Message: r.Message, Txid: r.TxID,
		StateSet: r.State != nil, State: r.State, Details: r.Details,
		Unprompted: r.Unprompted, TrustToken: r.TrustToken,
	}
}

func challengeReqFromPB(r *pb.ChallengeRequest) ChallengeRequest {
	return ChallengeRequest{User: userFromPB(r.GetUser()), State: r.GetState(), Factor: Factor(r.GetFactor()),
		ClientIP: r.GetClientIp(), Now: wire.FromUnixNano(r.GetNowUnixNano())}
}

func challengeRespToPB(r ChallengeResponse) *pb.ChallengeResponse {
	return &pb.ChallengeResponse{
		StateSet: r.State != nil, State: r.State, Txid: r.TxID, Message: r.Message,
		ExpiresAtUnixNano: wire.UnixNano(r.ExpiresAt), ResendAfterUnixNano: wire.UnixNano(r.ResendAfter), Public: r.Public,
	}
}

// kindCodes maps error kinds to the gRPC code that carries them. The code is
// a fallback for clients that ignore the ErrorDetail.
var kindCodes = map[Kind]codes.Code{
	KindInvalidSettings:    codes.InvalidArgument,
	KindInvalidRequest:     codes.InvalidArgument,
	KindInvalidState:       codes.FailedPrecondition,
	KindUnavailable:        codes.Unavailable,
	KindNotConfigured:      codes.FailedPrecondition,
	KindInvalidCredentials: codes.PermissionDenied,
	KindClockSkew:          codes.FailedPrecondition,
	KindUnsupported:        codes.Unimplemented,
	KindInternal:           codes.Internal,
}

// toStatus turns a provider's error into a gRPC status with typed details.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Kind: KindInternal, Message: err.Error()}
	}
	code, ok := kindCodes[e.Kind]
	if !ok {
		code = codes.Unknown
	}
	st, derr := status.New(code, e.Error()).WithDetails(&pb.ErrorDetail{Kind: string(e.Kind), Field: e.Field, Message: e.Message, Fix: e.Fix})
	if derr != nil {
		return status.Error(code, e.Error())
	}
	return st.Err()
}
