pub struct Client; pub struct ClientAck; pub struct ClientBuilder; pub struct ClientSocket;
