// A client of the original service, written the way its .NET clients were: DataContractSerializer
// for XML, DataContractJsonSerializer and JavaScriptSerializer for JSON (Microsoft dates), the
// ASP.NET Web API client formatters (PostAsJsonAsync / ReadAsAsync<T>, Json.NET inside), errors
// read as HttpError in JSON and XML, and HttpWebRequest with Expect: 100-continue, chunked bodies
// and a CredentialCache that answers the Basic challenge.
//
// Compiled with mcs and run with mono by tests/dotnet.rs:
//   mono Client.exe BASE_URL ADMIN_LOGIN TECH_LOGIN TECH_USER_ID STALE_CURSOR
// Logins are username:password@domain. Prints "ok NAME" per check and "FAIL NAME: why" for each
// failure; exits 1 when any check failed.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Formatting;
using System.Net.Http.Headers;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Text;
using System.Web.Script.Serialization;
using System.Xml;
using System.Xml.Schema;
using System.Xml.Serialization;

[DataContract(Name = "job_dispatch_log", Namespace = "")]
public class JobDispatchLog
{
    [DataMember] public Guid id;
    [DataMember] public Guid jobs_id;
    [DataMember] public Guid user_id;
    [DataMember] public DateTime date_create;
    [DataMember] public DateTime date_proceeded;
    [DataMember] public bool is_accepted;
    [DataMember] public bool is_rejected;
    [DataMember] public string rejected_reason;
    [DataMember] public bool sys_logical_delete;
    [DataMember] public bool is_workshop;
    [DataMember] public DateTime modified_dateutc;
    [DataMember] public int sequence;
    [DataMember] public string assigned_user_ids;
}

/// An OData list page as the service writes it in JSON.
[DataContract(Namespace = "")]
public class ListPage
{
    [DataMember] public List<JobDispatchLog> value;
}

namespace System.Web.Http
{
    /// Debian's Mono ships ASP.NET Web API's client formatters from before HttpError existed, so
    /// this is HttpError as Web API defines it on the wire: a dictionary of members; in XML the
    /// root element <Error> in no namespace (DataContractSerializer refuses any other root), one
    /// child element per member, each read as its inner XML; in JSON an object (Json.NET reads it
    /// as a dictionary). ReadAsAsync<HttpError>() below goes through the real formatters.
    [XmlRoot("Error")]
    public sealed class HttpError : Dictionary<string, object>, IXmlSerializable
    {
        public HttpError() : base(StringComparer.OrdinalIgnoreCase) { }

        public string Message
        {
            get { object m; return TryGetValue("Message", out m) ? m as string : null; }
        }

        XmlSchema IXmlSerializable.GetSchema() { return null; }

        void IXmlSerializable.ReadXml(XmlReader reader)
        {
            if (reader.IsEmptyElement) { reader.Read(); return; }
            reader.ReadStartElement();
            while (reader.MoveToContent() == XmlNodeType.Element)
            {
                string key = XmlConvert.DecodeName(reader.LocalName);
                Add(key, reader.ReadInnerXml());
            }
            reader.ReadEndElement();
        }

        void IXmlSerializable.WriteXml(XmlWriter writer)
        {
            foreach (var member in this)
            {
                writer.WriteStartElement(XmlConvert.EncodeLocalName(member.Key));
                if (member.Value != null) writer.WriteValue(member.Value.ToString());
                writer.WriteEndElement();
            }
        }
    }
}

static class Program
{
    static string baseUrl;
    static string adminLogin, techLogin;
    static Guid techUserId;
    static string staleCursor;
    static int failures;
    static readonly List<string> passed = new List<string>();

    static int Main(string[] args)
    {
        if (args.Length != 5)
        {
            Console.Error.WriteLine("usage: Client.exe BASE_URL ADMIN_LOGIN TECH_LOGIN TECH_USER_ID STALE_CURSOR");
            return 2;
        }
        baseUrl = args[0].TrimEnd('/') + "/";
        adminLogin = args[1];
        techLogin = args[2];
        techUserId = Guid.Parse(args[3]);
        staleCursor = args[4];
        Console.WriteLine("mono " + Environment.Version + ", local time zone " + TimeZoneInfo.Local.Id);

        Check("datacontractserializer-xml-save-and-read", DataContractXml);
        Check("datacontractjsonserializer-microsoft-dates", DataContractJson);
        Check("datacontractjsonserializer-local-offset", DataContractJsonLocalOffset);
        Check("datacontractjsonserializer-unset-dates", DataContractJsonUnsetDates);
        Check("javascriptserializer-microsoft-dates", JavaScript);
        Check("webapi-json-formatter-round-trip", WebApiJson);
        Check("webapi-xml-formatter-round-trip", WebApiXml);
        Check("webapi-list-json-and-xml", WebApiLists);
        Check("httpwebrequest-100-continue-basic-challenge", WebRequestChallenge);
        Check("httpwebrequest-chunked-xml", WebRequestChunkedXml);
        Check("problem-json-only-when-asked", ProblemJsonOnlyWhenAsked);
        foreach (var format in new[] { "application/json", "application/xml" })
        {
            var f = format;
            Check("httperror-" + Short(f) + "-400", () => Error400(f));
            Check("httperror-" + Short(f) + "-401", () => Error401(f));
            Check("httperror-" + Short(f) + "-403", () => Error403(f));
            Check("httperror-" + Short(f) + "-404", () => Error404(f));
            Check("httperror-" + Short(f) + "-405", () => Error405(f));
            Check("httperror-" + Short(f) + "-409", () => Error409(f));
            Check("httperror-" + Short(f) + "-410", () => Error410(f));
            Check("httperror-" + Short(f) + "-412", () => Error412(f));
            Check("httperror-" + Short(f) + "-413", () => Error413(f));
            Check("httperror-" + Short(f) + "-415", () => Error415(f));
        }
        // Last: once the address is rate limited, every login waits out the minute.
        Check("httperror-json-and-xml-429", Error429);

        Console.WriteLine(failures == 0 ? "ALL CHECKS PASSED (" + passed.Count + ")" : failures + " CHECKS FAILED");
        return failures == 0 ? 0 : 1;
    }

    static string Short(string mediaType) { return mediaType.EndsWith("json") ? "json" : "xml"; }

    static void Check(string name, Action check)
    {
        try
        {
            check();
            passed.Add(name);
            Console.WriteLine("ok " + name);
        }
        catch (Exception e)
        {
            failures++;
            var inner = e;
            while (inner is AggregateException && inner.InnerException != null) inner = inner.InnerException;
            Console.WriteLine("FAIL " + name + ": " + inner.GetType().Name + ": " + inner.Message.Replace('\n', ' '));
        }
    }

    static void Expect(bool condition, string what)
    {
        if (!condition) throw new Exception(what);
    }

    static void Same<T>(T expected, T actual, string what)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual))
            throw new Exception(what + ": expected " + expected + ", got " + actual);
    }

    // --- helpers ----------------------------------------------------------------------------

    static string Basic(string login)
    {
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(login));
    }

    static HttpClient Client(string login)
    {
        var client = new HttpClient { BaseAddress = new Uri(baseUrl) };
        if (login != null)
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Basic(login));
        return client;
    }

    static JobDispatchLog NewRow()
    {
        return new JobDispatchLog
        {
            id = Guid.NewGuid(),
            jobs_id = Guid.NewGuid(),
            user_id = Guid.NewGuid(),
            rejected_reason = "",
            assigned_user_ids = "",
        };
    }

    /// A decision time with milliseconds only, as Microsoft dates and XML carry it.
    static readonly DateTime Decided = new DateTime(2025, 1, 2, 3, 4, 5, 123, DateTimeKind.Utc);

    static string Send(HttpMethod method, string path, string contentType, string body, string accept, string login, out HttpStatusCode status, out string responseType)
    {
        using (var client = Client(login))
        {
            var request = new HttpRequestMessage(method, path);
            if (body != null)
            {
                request.Content = new StringContent(body, Encoding.UTF8);
                request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
            }
            if (accept != null) request.Headers.Accept.ParseAdd(accept);
            var response = client.SendAsync(request).Result;
            status = response.StatusCode;
            responseType = response.Content.Headers.ContentType == null ? "" : response.Content.Headers.ContentType.MediaType;
            return response.Content.ReadAsStringAsync().Result;
        }
    }

    static void AssertSameRow(JobDispatchLog expected, JobDispatchLog actual, string how)
    {
        Same(expected.id, actual.id, how + " id");
        Same(expected.jobs_id, actual.jobs_id, how + " jobs_id");
        Same(expected.user_id, actual.user_id, how + " user_id");
        Same(expected.is_accepted, actual.is_accepted, how + " is_accepted");
    }

    // --- XML with DataContractSerializer ----------------------------------------------------

    static string ToXml(object value)
    {
        var serializer = new DataContractSerializer(value.GetType());
        using (var ms = new MemoryStream())
        {
            serializer.WriteObject(ms, value);
            return Encoding.UTF8.GetString(ms.ToArray());
        }
    }

    static T FromXml<T>(string text)
    {
        var serializer = new DataContractSerializer(typeof(T));
        using (var ms = new MemoryStream(Encoding.UTF8.GetBytes(text)))
            return (T)serializer.ReadObject(ms);
    }

    static void DataContractXml()
    {
        var row = NewRow();
        row.is_accepted = true;
        row.date_proceeded = Decided;
        HttpStatusCode status; string type;
        var text = Send(HttpMethod.Post, "api/JobDispatchLog/Save", "application/xml", ToXml(row), "application/xml", adminLogin, out status, out type);
        Same(HttpStatusCode.Created, status, "save status (" + text + ")");
        Same("application/xml", type, "content type");
        var saved = FromXml<JobDispatchLog>(text);
        AssertSameRow(row, saved, "saved");
        Same(Decided, saved.date_proceeded.ToUniversalTime(), "date_proceeded");
        Expect(saved.sequence == 1, "sequence assigned: " + saved.sequence);
        Same(row.user_id.ToString(), saved.assigned_user_ids, "assigned_user_ids");
        var read = FromXml<JobDispatchLog>(Send(HttpMethod.Get, "api/JobDispatchLog(" + row.id + ")", null, null, "application/xml", adminLogin, out status, out type));
        Same(HttpStatusCode.OK, status, "read status");
        AssertSameRow(row, read, "read");
        Same(saved.modified_dateutc, read.modified_dateutc, "modified_dateutc");
    }

    // --- JSON with DataContractJsonSerializer: Microsoft dates out, ISO dates in -------------

    static string ToMicrosoftJson(object value)
    {
        var serializer = new DataContractJsonSerializer(value.GetType());
        using (var ms = new MemoryStream())
        {
            serializer.WriteObject(ms, value);
            return Encoding.UTF8.GetString(ms.ToArray());
        }
    }

    /// The service writes ISO dates, as Json.NET did for the original; a DataContractJsonSerializer
    /// client reads them with a date format (.NET 4.5).
    static T FromIsoJson<T>(string text)
    {
        var settings = new DataContractJsonSerializerSettings
        {
            DateTimeFormat = new DateTimeFormat("yyyy-MM-ddTHH:mm:ss.FFFFFFFK"),
        };
        var serializer = new DataContractJsonSerializer(typeof(T), settings);
        using (var ms = new MemoryStream(Encoding.UTF8.GetBytes(text)))
            return (T)serializer.ReadObject(ms);
    }

    static void SaveMicrosoftJson(JobDispatchLog row, string expectInBody)
    {
        var body = ToMicrosoftJson(row);
        Expect(body.Contains(expectInBody), "the serializer wrote " + expectInBody + ": " + body);
        Console.WriteLine("  sent " + body.Substring(body.IndexOf("\"date_proceeded\""), 45));
        HttpStatusCode status; string type;
        var text = Send(HttpMethod.Post, "api/JobDispatchLog/Save", "application/json", body, "application/json", adminLogin, out status, out type);
        Same(HttpStatusCode.Created, status, "save status (" + text + ")");
        var saved = FromIsoJson<JobDispatchLog>(text);
        AssertSameRow(row, saved, "saved");
        Same(Decided, saved.date_proceeded.ToUniversalTime(), "date_proceeded");
        Expect(text.Contains("\"date_proceeded\":\"2025-01-02T03:04:05.1230000+00:00\""), "ISO output: " + text);
        var read = FromIsoJson<JobDispatchLog>(Send(HttpMethod.Get, "api/JobDispatchLog/" + row.id, null, null, null, adminLogin, out status, out type));
        Same(Decided, read.date_proceeded.ToUniversalTime(), "read date_proceeded");
    }

    static void DataContractJson()
    {
        var row = NewRow();
        row.is_accepted = true;
        row.date_proceeded = Decided;
        // .NET's default DateTime in date_create: "not given", the server's now.
        SaveMicrosoftJson(row, "\\/Date(1735787045123)\\/");
    }

    static void DataContractJsonUnsetDates()
    {
        // .NET's default DateTime (MinValue) means "not given". A local one is written as the
        // instant of midnight, year 1, in this machine's zone (/Date(-62135578980000-0457)/ in
        // New York); east of Greenwich Mono's serializer cannot write it at all.
        var row = NewRow();
        var body = ToMicrosoftJson(row);
        Expect(body.Contains("\"date_proceeded\":\"\\/Date(-62135"), "MinValue sent: " + body);
        Console.WriteLine("  sent " + body.Substring(body.IndexOf("\"date_proceeded\""), 47));
        HttpStatusCode status; string type;
        var text = Send(HttpMethod.Post, "api/JobDispatchLog/Save", "application/json", body, null, adminLogin, out status, out type);
        Same(HttpStatusCode.Created, status, "default dates (" + text + ")");
        var stored = FromIsoJson<JobDispatchLog>(text);
        Same(new DateTime(1980, 1, 1, 0, 0, 0, DateTimeKind.Utc), stored.date_proceeded.ToUniversalTime(), "date_proceeded default");
        Expect(stored.date_create.ToUniversalTime() > DateTime.UtcNow.AddHours(-1), "date_create is the server's now: " + stored.date_create);
    }

    static void DataContractJsonLocalOffset()
    {
        // A local DateTime is written with the machine's offset, which does not move the instant.
        var row = NewRow();
        row.is_accepted = true;
        row.date_proceeded = Decided.ToLocalTime();
        Same(DateTimeKind.Local, row.date_proceeded.Kind, "local kind");
        var offset = TimeZoneInfo.Local.GetUtcOffset(Decided);
        var sign = offset < TimeSpan.Zero ? "-" : "+";
        var zone = sign + Math.Abs(offset.Hours).ToString("00") + Math.Abs(offset.Minutes).ToString("00");
        SaveMicrosoftJson(row, "\\/Date(1735787045123" + zone + ")\\/");
    }

    // --- JSON with JavaScriptSerializer ------------------------------------------------------

    static void JavaScript()
    {
        var js = new JavaScriptSerializer();
        var row = NewRow();
        row.is_accepted = true;
        row.date_proceeded = Decided;
        row.date_create = Decided.AddDays(-1);
        // Mono's JavaScriptSerializer writes DateTime.MinValue as year 100, not .NET's
        // /Date(-62135596800000)/; the read-only stamp is ignored by the service anyway.
        row.modified_dateutc = Decided;
        var body = js.Serialize(row);
        Expect(body.Contains("\"date_proceeded\":\"\\/Date(1735787045123)\\/\""), "Microsoft date sent: " + body);
        HttpStatusCode status; string type;
        var text = Send(HttpMethod.Post, "api/JobDispatchLog/Save", "application/json", body, null, adminLogin, out status, out type);
        Same(HttpStatusCode.Created, status, "save status (" + text + ")");
        var saved = js.Deserialize<JobDispatchLog>(text);
        AssertSameRow(row, saved, "saved");
        Same(Decided, saved.date_proceeded.ToUniversalTime(), "date_proceeded");
        Same(Decided.AddDays(-1), saved.date_create.ToUniversalTime(), "date_create");
    }

    // --- The Web API client formatters (Json.NET inside) -------------------------------------

    static void WebApiJson()
    {
        using (var client = Client(adminLogin))
        {
            var row = NewRow();
            row.is_accepted = true;
            // Seven fraction digits: the service keeps 100 ns ticks.
            row.date_proceeded = new DateTime(2026, 1, 11, 21, 2, 31, DateTimeKind.Utc).AddTicks(7932294);
            var response = client.PostAsJsonAsync("api/JobDispatchLog/Save", row).Result;
            Same(HttpStatusCode.Created, response.StatusCode, "save status");
            var saved = response.Content.ReadAsAsync<JobDispatchLog>().Result;
            AssertSameRow(row, saved, "saved");
            Same(row.date_proceeded.Ticks, saved.date_proceeded.ToUniversalTime().Ticks, "ticks");
            saved.rejected_reason = "";
            saved.is_accepted = false;
            saved.is_rejected = true;
            saved.rejected_reason = "van broke down";
            response = client.PostAsJsonAsync("api/JobDispatchLog/Save", saved).Result;
            Same(HttpStatusCode.OK, response.StatusCode, "update status");
            var read = client.GetAsync("api/JobDispatchLog(" + row.id + ")").Result.Content.ReadAsAsync<JobDispatchLog>().Result;
            Same("van broke down", read.rejected_reason, "rejected_reason");
            Same(saved.date_create.ToUniversalTime(), read.date_create.ToUniversalTime(), "date_create kept");
        }
    }

    static void WebApiXml()
    {
        using (var client = Client(adminLogin))
        {
            client.DefaultRequestHeaders.Accept.ParseAdd("application/xml");
            var row = NewRow();
            row.is_workshop = true;
            var response = client.PostAsXmlAsync("api/JobDispatchLog/Save", row).Result;
            Same(HttpStatusCode.Created, response.StatusCode, "save status");
            Same("application/xml", response.Content.Headers.ContentType.MediaType, "content type");
            var saved = response.Content.ReadAsAsync<JobDispatchLog>().Result;
            AssertSameRow(row, saved, "saved");
            Expect(saved.is_workshop, "is_workshop");
        }
    }

    static void WebApiLists()
    {
        using (var client = Client(adminLogin))
        {
            var job = Guid.NewGuid();
            var rows = Enumerable.Range(0, 3).Select(_ => { var r = NewRow(); r.jobs_id = job; return r; }).ToList();
            var response = client.PostAsJsonAsync("api/JobDispatchLog/SaveMultiple", rows).Result;
            Same(HttpStatusCode.OK, response.StatusCode, "SaveMultiple status");
            var saved = response.Content.ReadAsAsync<List<JobDispatchLog>>().Result;
            Same(3, saved.Count, "saved rows");
            Same(string.Join(",", rows.Select(r => r.user_id)), saved[2].assigned_user_ids, "assigned_user_ids");
            var page = client.GetAsync("api/JobDispatchLog?$filter=jobs_id eq " + job + "&$orderby=sequence").Result.Content.ReadAsAsync<ListPage>().Result;
            Same(3, page.value.Count, "JSON page");
            Same(rows[0].id, page.value[0].id, "JSON order");
            var request = new HttpRequestMessage(HttpMethod.Get, "api/JobDispatchLog?$filter=jobs_id eq " + job + "&$orderby=sequence");
            request.Headers.Accept.ParseAdd("application/xml");
            var xml = client.SendAsync(request).Result.Content.ReadAsAsync<List<JobDispatchLog>>().Result;
            Same(3, xml.Count, "XML page");
            Same(rows[2].id, xml[2].id, "XML order");
        }
    }

    // --- HttpWebRequest: Expect: 100-continue, the Basic challenge, chunked bodies ----------

    static CredentialCache Credentials(string login)
    {
        // username:password@domain: the password part carries the domain, as the original's
        // clients configured it.
        int colon = login.IndexOf(':');
        var cache = new CredentialCache();
        cache.Add(new Uri(baseUrl), "Basic", new NetworkCredential(login.Substring(0, colon), login.Substring(colon + 1)));
        return cache;
    }

    static HttpWebRequest WebRequestTo(string path, string login)
    {
        var request = (HttpWebRequest)WebRequest.Create(baseUrl + path);
        request.Credentials = Credentials(login);
        request.PreAuthenticate = false;
        request.ServicePoint.Expect100Continue = true;
        return request;
    }

    static HttpWebResponse GetResponse(HttpWebRequest request)
    {
        try { return (HttpWebResponse)request.GetResponse(); }
        catch (WebException e)
        {
            if (e.Response == null) throw;
            return (HttpWebResponse)e.Response;
        }
    }

    static void WebRequestChallenge()
    {
        var row = NewRow();
        row.is_accepted = true;
        row.date_proceeded = Decided;
        var body = Encoding.UTF8.GetBytes(ToMicrosoftJson(row));
        var request = WebRequestTo("api/JobDispatchLog/Save", adminLogin);
        request.Method = "POST";
        request.ContentType = "application/json; charset=utf-8";
        request.Accept = "application/json";
        request.ContentLength = body.Length;
        using (var stream = request.GetRequestStream()) stream.Write(body, 0, body.Length);
        using (var response = GetResponse(request))
        {
            Same(HttpStatusCode.Created, response.StatusCode, "save status");
            string text;
            using (var reader = new StreamReader(response.GetResponseStream())) text = reader.ReadToEnd();
            var saved = FromIsoJson<JobDispatchLog>(text);
            AssertSameRow(row, saved, "saved");
            Same(Decided, saved.date_proceeded.ToUniversalTime(), "date_proceeded");
        }
        // The credentials went only in answer to the challenge, with Expect: 100-continue.
        Console.WriteLine("  sent headers: " + string.Join(", ", request.Headers.AllKeys));
        Expect(request.Headers["Authorization"] != null && request.Headers["Authorization"].StartsWith("Basic "), "answered the Basic challenge");
        Same("100-continue", request.Headers["Expect"], "Expect header");
    }

    static void WebRequestChunkedXml()
    {
        var row = NewRow();
        var body = Encoding.UTF8.GetBytes(ToXml(row));
        var request = WebRequestTo("api/JobDispatchLog/Save", adminLogin);
        request.Method = "POST";
        request.ContentType = "text/xml; charset=utf-8";
        request.Accept = "text/xml";
        request.SendChunked = true;
        using (var stream = request.GetRequestStream()) stream.Write(body, 0, body.Length);
        using (var response = GetResponse(request))
        {
            Same(HttpStatusCode.Created, response.StatusCode, "save status");
            string text;
            using (var reader = new StreamReader(response.GetResponseStream())) text = reader.ReadToEnd();
            AssertSameRow(row, FromXml<JobDispatchLog>(text), "saved");
        }
    }

    // --- Errors read as HttpError ------------------------------------------------------------

    static System.Web.Http.HttpError ReadError(HttpResponseMessage response, HttpStatusCode expected, string accept)
    {
        Same(expected, response.StatusCode, "status");
        var type = response.Content.Headers.ContentType.MediaType;
        Same(accept, type, "content type");
        var error = response.Content.ReadAsAsync<System.Web.Http.HttpError>().Result;
        Expect(!string.IsNullOrEmpty(error.Message), "Message");
        Same(((int)expected).ToString(), error["status"].ToString(), "status member");
        Same(error["detail"].ToString(), error.Message, "detail = Message");
        Expect(error["type"].ToString().Length > 0 && error["title"].ToString().Length > 0, "type and title");
        return error;
    }

    static HttpResponseMessage Request(string login, HttpMethod method, string path, string accept, HttpContent content = null, Action<HttpRequestMessage> adjust = null)
    {
        using (var client = Client(login))
        {
            var request = new HttpRequestMessage(method, path) { Content = content };
            request.Headers.Accept.ParseAdd(accept);
            if (adjust != null) adjust(request);
            var response = client.SendAsync(request).Result;
            response.Content.LoadIntoBufferAsync().Wait();
            return response;
        }
    }

    static HttpContent Json(string text)
    {
        var content = new StringContent(text, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    static JobDispatchLog SaveWithAdmin(JobDispatchLog row)
    {
        using (var client = Client(adminLogin))
        {
            var response = client.PostAsJsonAsync("api/JobDispatchLog/Save", row).Result;
            Expect(response.IsSuccessStatusCode, "setup save: " + response.StatusCode);
            return response.Content.ReadAsAsync<JobDispatchLog>().Result;
        }
    }

    static void Error400(string accept)
    {
        var error = ReadError(Request(adminLogin, HttpMethod.Post, "api/JobDispatchLog/Save", accept, Json("{\"jobs_id\":\"not a guid\",\"date_proceeded\":\"\\/Date(253402300800000)\\/\"}")), HttpStatusCode.BadRequest, accept);
        var errors = error["errors"].ToString();
        Expect(errors.Contains("jobs_id") && errors.Contains("date_proceeded") && errors.Contains("1753 to 9999"), "errors names the fields: " + errors);
    }

    static void Error401(string accept)
    {
        var response = Request(null, HttpMethod.Get, "api/JobDispatchLog", accept);
        Expect(response.Headers.WwwAuthenticate.Any(h => h.Scheme == "Basic"), "Basic challenge");
        ReadError(response, HttpStatusCode.Unauthorized, accept);
    }

    static void Error403(string accept)
    {
        var row = NewRow();
        row.user_id = techUserId;
        SaveWithAdmin(row);
        ReadError(Request(techLogin, HttpMethod.Delete, "api/JobDispatchLog/" + row.id, accept), HttpStatusCode.Forbidden, accept);
    }

    static void Error404(string accept)
    {
        ReadError(Request(adminLogin, HttpMethod.Get, "api/JobDispatchLog(" + Guid.NewGuid() + ")", accept), HttpStatusCode.NotFound, accept);
    }

    static void Error405(string accept)
    {
        ReadError(Request(adminLogin, HttpMethod.Delete, "api/JobDispatchLog/Save", accept), HttpStatusCode.MethodNotAllowed, accept);
    }

    static void Error409(string accept)
    {
        var row = NewRow();
        row.is_workshop = true;
        SaveWithAdmin(row);
        var error = ReadError(Request(adminLogin, HttpMethod.Post, "api/JobDispatchLog/" + row.id + "/Reject", accept, Json("{\"rejected_reason\":\"no\"}")), HttpStatusCode.Conflict, accept);
        Expect(error["current"].ToString().Contains(row.id.ToString()), "current row carried");
    }

    static void Error410(string accept)
    {
        ReadError(Request(adminLogin, HttpMethod.Get, "api/JobDispatchLog/Changes?since=" + staleCursor, accept), HttpStatusCode.Gone, accept);
    }

    static void Error412(string accept)
    {
        var saved = SaveWithAdmin(NewRow());
        ReadError(Request(adminLogin, HttpMethod.Delete, "api/JobDispatchLog/" + saved.id, accept, null,
            r => r.Headers.IfMatch.Add(new EntityTagHeaderValue("\"stale\""))), HttpStatusCode.PreconditionFailed, accept);
    }

    static void Error413(string accept)
    {
        // .NET Framework clients ask before sending a large body (ServicePointManager's default),
        // so the refusal comes before the body is sent.
        var body = new string(' ', 1024 * 1024 + 1);
        ReadError(Request(adminLogin, HttpMethod.Post, "api/JobDispatchLog/Save", accept, Json(body),
            r => r.Headers.ExpectContinue = true), HttpStatusCode.RequestEntityTooLarge, accept);
    }

    static void Error415(string accept)
    {
        var content = new StringContent("jobs_id=1");
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");
        ReadError(Request(adminLogin, HttpMethod.Post, "api/JobDispatchLog/Save", accept, content), HttpStatusCode.UnsupportedMediaType, accept);
    }

    static void Error429()
    {
        var wrong = adminLogin.Substring(0, adminLogin.IndexOf(':')) + ":wrong-password" + adminLogin.Substring(adminLogin.LastIndexOf('@'));
        HttpResponseMessage limited = null;
        for (int i = 0; i < 200 && limited == null; i++)
        {
            var response = Request(wrong, HttpMethod.Get, "api/JobDispatchLog", "application/json");
            if ((int)response.StatusCode == 429) limited = response;
            else Same(HttpStatusCode.Unauthorized, response.StatusCode, "a failed login");
        }
        Expect(limited != null, "rate limited within 200 failed logins");
        Expect(limited.Headers.RetryAfter != null, "Retry-After");
        ReadError(limited, (HttpStatusCode)429, "application/json");
        ReadError(Request(wrong, HttpMethod.Get, "api/JobDispatchLog", "application/xml"), (HttpStatusCode)429, "application/xml");
    }

    /// A client that names application/problem+json gets it, and then the Web API formatters
    /// cannot read it, exactly as the issue reported for every error before.
    static void ProblemJsonOnlyWhenAsked()
    {
        var response = Request(adminLogin, HttpMethod.Get, "api/JobDispatchLog(" + Guid.NewGuid() + ")", "application/problem+json");
        Same(HttpStatusCode.NotFound, response.StatusCode, "status");
        Same("application/problem+json", response.Content.Headers.ContentType.MediaType, "content type");
        Exception refused = null;
        try { response.Content.ReadAsAsync<System.Web.Http.HttpError>().Wait(); }
        catch (Exception e) { refused = e is AggregateException ? e.InnerException : e; }
        Expect(refused != null && refused.Message.Contains("No MediaTypeFormatter"), "the formatters refuse problem+json: " + refused);
    }
}
