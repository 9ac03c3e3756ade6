package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/twofactor/twofactor/sdk/internal/pb"
)

// This file converts between the public types and the twofactor.v1 wire
// types, in both directions, so nothing else touches pb.

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func infoToPB(i Info) *pb.InfoResponse {
	out := &pb.InfoResponse{
		Name:            i.Name,
		Version:         i.Version,
		ProtocolVersion: int32(i.ProtocolVersion),
		Description:     i.Description,
		Capabilities: &pb.Capabilities{
			Code:                    i.Capabilities.Code,
			Push:                    i.Capabilities.Push,
			EnrollNeedsConfirmation: i.Capabilities.EnrollNeedsConfirmation,
			MultipleCredentials:     i.Capabilities.MultipleCredentials,
			SilentChallenges:        i.Capabilities.SilentChallenges,
		},
	}
	for _, f := range i.Capabilities.Challenges {
		out.Capabilities.ChallengeFactors = append(out.Capabilities.ChallengeFactors, string(f))
	}
	out.Schema = schemaToPB(i.Schema)
	out.EnrollInputs = schemaToPB(i.EnrollInputs)
	return out
}

func schemaToPB(s Schema) []*pb.Field {
	var out []*pb.Field
	for _, f := range s {
		out = append(out, &pb.Field{
			Name: f.Name, Type: string(f.Type), Required: f.Required, Secret: f.Secret,
			Default: f.Default, Help: f.Help, Enum: f.Enum, Min: f.Min, Max: f.Max,
		})
	}
	return out
}

func schemaFromPB(fs []*pb.Field) Schema {
	var out Schema
	for _, f := range fs {
		out = append(out, Field{
			Name: f.GetName(), Type: FieldType(f.GetType()), Required: f.GetRequired(), Secret: f.GetSecret(),
			Default: f.GetDefault(), Help: f.GetHelp(), Enum: f.GetEnum(), Min: f.GetMin(), Max: f.GetMax(),
		})
	}
	return out
}

func infoFromPB(r *pb.InfoResponse) Info {
	out := Info{
		Name:            r.GetName(),
		Version:         r.GetVersion(),
		ProtocolVersion: int(r.GetProtocolVersion()),
		Description:     r.GetDescription(),
		Capabilities: Capabilities{
			Code:                    r.GetCapabilities().GetCode(),
			Push:                    r.GetCapabilities().GetPush(),
			EnrollNeedsConfirmation: r.GetCapabilities().GetEnrollNeedsConfirmation(),
			MultipleCredentials:     r.GetCapabilities().GetMultipleCredentials(),
			SilentChallenges:        r.GetCapabilities().GetSilentChallenges(),
		},
	}
	for _, f := range r.GetCapabilities().GetChallengeFactors() {
		out.Capabilities.Challenges = append(out.Capabilities.Challenges, Factor(f))
	}
	out.Schema = schemaFromPB(r.GetSchema())
	out.EnrollInputs = schemaFromPB(r.GetEnrollInputs())
	return out
}

func activationToPB(a Activation) *pb.ActivateResponse {
	out := &pb.ActivateResponse{Health: string(a.Health)}
	for _, d := range a.Diagnostics {
		out.Diagnostics = append(out.Diagnostics, &pb.Diagnostic{Code: d.Code, Message: d.Message, Value: d.Value,
			Severity: string(d.Severity), Fix: d.Fix})
	}
	return out
}

func activationFromPB(r *pb.ActivateResponse) Activation {
	out := Activation{Health: Health(r.GetHealth())}
	for _, d := range r.GetDiagnostics() {
		out.Diagnostics = append(out.Diagnostics, Diagnostic{Code: d.GetCode(), Message: d.GetMessage(), Value: d.GetValue(),
			Severity: Severity(d.GetSeverity()), Fix: d.GetFix()})
	}
	return out
}

func userToPB(u User) *pb.User { return &pb.User{Id: u.ID, AccountName: u.AccountName} }

func userFromPB(u *pb.User) User { return User{ID: u.GetId(), AccountName: u.GetAccountName()} }

func enrollReqToPB(r EnrollRequest) *pb.EnrollRequest {
	return &pb.EnrollRequest{User: userToPB(r.User), Step: string(r.Step), State: r.State, Code: r.Code, NowUnixNano: unixNano(r.Now),
		Inputs: r.Inputs, Credential: r.Credential}
}

func enrollReqFromPB(r *pb.EnrollRequest) EnrollRequest {
	return EnrollRequest{User: userFromPB(r.GetUser()), Step: EnrollStep(r.GetStep()), State: r.GetState(), Code: r.GetCode(), Now: fromUnixNano(r.GetNowUnixNano()),
		Inputs: r.GetInputs(), Credential: r.GetCredential()}
}

func enrollRespToPB(r EnrollResponse) *pb.EnrollResponse {
	return &pb.EnrollResponse{
		State: r.State, Done: r.Done, Reason: string(r.Reason),
		Display: &pb.Display{
			OtpauthUrl: r.Display.OTPAuthURL, QrPng: r.Display.QRPNG, ActivationUrl: r.Display.ActivationURL,
			ActivationCode: r.Display.ActivationCode, Instructions: r.Display.Instructions, BarcodeUrl: r.Display.BarcodeURL,
			Public: r.Display.Public,
		},
		Credentials: credentialsToPB(r.Credentials),
	}
}

func credentialsToPB(cs []Credential) []*pb.Credential {
	var out []*pb.Credential
	for _, c := range cs {
		out = append(out, &pb.Credential{Id: c.ID, Label: c.Label,
			CreatedUnixNano: unixNano(c.CreatedAt), LastUsedUnixNano: unixNano(c.LastUsedAt)})
	}
	return out
}

func credentialsFromPB(cs []*pb.Credential) []Credential {
	var out []Credential
	for _, c := range cs {
		out = append(out, Credential{ID: c.GetId(), Label: c.GetLabel(),
			CreatedAt: fromUnixNano(c.GetCreatedUnixNano()), LastUsedAt: fromUnixNano(c.GetLastUsedUnixNano())})
	}
	return out
}

func enrollRespFromPB(r *pb.EnrollResponse) EnrollResponse {
	d := r.GetDisplay()
	return EnrollResponse{
		State: r.GetState(), Done: r.GetDone(), Reason: Reason(r.GetReason()),
		Display: Display{
			OTPAuthURL: d.GetOtpauthUrl(), QRPNG: d.GetQrPng(), ActivationURL: d.GetActivationUrl(),
			ActivationCode: d.GetActivationCode(), Instructions: d.GetInstructions(), BarcodeURL: d.GetBarcodeUrl(),
			Public: d.GetPublic(),
		},
		Credentials: credentialsFromPB(r.GetCredentials()),
	}
}

func verifyReqToPB(r VerifyRequest) *pb.VerifyRequest {
	return &pb.VerifyRequest{
		User: userToPB(r.User), State: r.State, Code: r.Code, Factor: r.Factor, Txid: r.TxID,
		ClientIp: r.ClientIP, NowUnixNano: unixNano(r.Now), TrustToken: r.TrustToken,
	}
}

func verifyReqFromPB(r *pb.VerifyRequest) VerifyRequest {
	return VerifyRequest{
		User: userFromPB(r.GetUser()), State: r.GetState(), Code: r.GetCode(), Factor: r.GetFactor(),
		TxID: r.GetTxid(), ClientIP: r.GetClientIp(), Now: fromUnixNano(r.GetNowUnixNano()),
		TrustToken: r.GetTrustToken(),
	}
}

func verifyRespToPB(r VerifyResponse) *pb.VerifyResponse {
	return &pb.VerifyResponse{
		Outcome: string(r.Outcome), Reason: string(r.Reason), Message: r.Message, Txid: r.TxID,
		StateSet: r.State != nil, State: r.State, Details: r.Details,
		Unprompted: r.Unprompted, TrustToken: r.TrustToken,
	}
}

func verifyRespFromPB(r *pb.VerifyResponse) VerifyResponse {
	out := VerifyResponse{
		Outcome: Outcome(r.GetOutcome()), Reason: Reason(r.GetReason()), Message: r.GetMessage(),
		TxID: r.GetTxid(), Details: r.GetDetails(),
		Unprompted: r.GetUnprompted(), TrustToken: r.GetTrustToken(),
	}
	if r.GetStateSet() {
		out.State = r.GetState()
		if out.State == nil {
			out.State = []byte{}
		}
	}
	return out
}

func challengeReqToPB(r ChallengeRequest) *pb.ChallengeRequest {
	return &pb.ChallengeRequest{User: userToPB(r.User), State: r.State, Factor: string(r.Factor),
		ClientIp: r.ClientIP, NowUnixNano: unixNano(r.Now)}
}

func challengeReqFromPB(r *pb.ChallengeRequest) ChallengeRequest {
	return ChallengeRequest{User: userFromPB(r.GetUser()), State: r.GetState(), Factor: Factor(r.GetFactor()),
		ClientIP: r.GetClientIp(), Now: fromUnixNano(r.GetNowUnixNano())}
}

func challengeRespToPB(r ChallengeResponse) *pb.ChallengeResponse {
	return &pb.ChallengeResponse{
		StateSet: r.State != nil, State: r.State, Txid: r.TxID, Message: r.Message,
		ExpiresAtUnixNano: unixNano(r.ExpiresAt), ResendAfterUnixNano: unixNano(r.ResendAfter), Public: r.Public,
	}
}

func challengeRespFromPB(r *pb.ChallengeResponse) ChallengeResponse {
	out := ChallengeResponse{
		TxID: r.GetTxid(), Message: r.GetMessage(), Public: r.GetPublic(),
		ExpiresAt: fromUnixNano(r.GetExpiresAtUnixNano()), ResendAfter: fromUnixNano(r.GetResendAfterUnixNano()),
	}
	if r.GetStateSet() {
		out.State = r.GetState()
		if out.State == nil {
			out.State = []byte{}
		}
	}
	return out
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

// ErrUnreachable marks an error where the provider process could not be
// reached at all (it crashed, or its connection broke). The host restarts
// the plugin on it; the same error is also an *Error of KindUnavailable.
var ErrUnreachable = errors.New("provider plugin unreachable")

// fromStatus turns a gRPC error back into the provider's typed error.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: %w", ErrUnreachable, &Error{Kind: KindUnavailable, Message: err.Error()})
	}
	for _, d := range st.Details() {
		if det, ok := d.(*pb.ErrorDetail); ok {
			return &Error{Kind: Kind(det.GetKind()), Field: det.GetField(), Message: det.GetMessage(), Fix: det.GetFix()}
		}
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("provider call: %w", context.DeadlineExceeded)
	case codes.Canceled:
		return fmt.Errorf("provider call: %w", context.Canceled)
	case codes.Unavailable:
		// No detail: the transport failed, not the provider.
		return fmt.Errorf("%w: %w", ErrUnreachable, &Error{Kind: KindUnavailable, Message: st.Message()})
	}
	return &Error{Kind: KindInternal, Message: fmt.Sprintf("provider returned %s: %s", st.Code(), st.Message())}
}
